"""Releases: what each apply records per app on every node it touched, history, and rollback."""
