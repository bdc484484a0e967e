"""Publishing: push what passed verification to a registry, pinned by digest (matrix -> ... -> publish)."""
