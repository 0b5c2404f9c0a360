"""Temporal runtime: embedded dev server, client connection, worker assembly."""
