"""publishing: see docs/architecture.md."""
