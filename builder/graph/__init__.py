"""The content-addressed build graph: nodes keyed by exactly their inputs, an index, a scheduler."""
