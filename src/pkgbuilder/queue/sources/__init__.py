"""Queue sources: where the continuous orchestrator's packages come from and where their
outcomes are written back (the embedded SQLite queue, or an MCP packages API)."""

from pkgbuilder.queue.sources.base import QueueSource, QueueSourceError, open_source

__all__ = ["QueueSource", "QueueSourceError", "open_source"]
