"""Operator tools for a deployed stack (run from the repo root: python -m tools.<name>)."""
