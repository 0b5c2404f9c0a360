"""Typer CLI: parses arguments, connects, starts/signals/queries workflows, renders progress."""
