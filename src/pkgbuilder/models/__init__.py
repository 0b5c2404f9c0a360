"""pydantic models shared by every layer (workflow and activity inputs/outputs, reports).

One module per area; secrets never appear in any of them.
"""
