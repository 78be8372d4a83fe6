"""Typed tasks (values) and the shell renderer that turns them into one `sh -s` bundle."""
