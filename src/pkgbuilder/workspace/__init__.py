"""workspace: see docs/architecture.md."""
