"""Operator tooling: the `carectl` command."""
