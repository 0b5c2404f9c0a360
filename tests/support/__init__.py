"""Test support: the scripted Messages-API server and test-only workflows."""
