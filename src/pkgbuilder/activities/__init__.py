"""Thin, idempotent adapters over pure modules. Each returns a pydantic model."""
