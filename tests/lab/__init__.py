"""Tests against the lab's real nodes (see lab/README.md)."""
