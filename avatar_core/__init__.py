"""Streaming Avatar: everything that is not page layout (see README)."""
