"""Content-addressed build cache (Temporal-free): task hashes and their manifests, output
archives and their safe extraction, the local store and the Turborepo-compatible remote
client. Activities in ``pkgbuilder.activities.cache`` are thin adapters over this package;
docs/cache.md describes the behaviour."""

FORMAT_VERSION = 1
