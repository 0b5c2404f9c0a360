"""Where the Claude API key is looked up (only ever from the environment)."""

API_KEY_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_API_KEY")
