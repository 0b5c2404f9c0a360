"""pkgbuilder: a durable, AI-assisted build factory for JS/TS monorepos on Temporal."""

__version__ = "0.1.0"
