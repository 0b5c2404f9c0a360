"""queue: see docs/architecture.md."""
