"""Upstream Triton tutorials and language tests, run unmodified against our backend.

The upstream files are never part of this repository: they come from a directory the user names
or are downloaded once into a cache, and are checked against the hashes in ``manifests/<tag>.json``.
"""
