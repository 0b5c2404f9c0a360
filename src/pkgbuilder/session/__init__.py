"""Turn-based generation, Temporal-free: plan parsing, the session state file, the resume
checklist and the session's git operations."""
