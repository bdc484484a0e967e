"""Shared caches for CI runners on different machines."""
