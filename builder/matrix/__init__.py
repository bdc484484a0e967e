"""The matrix: what to build. ``builder.matrix.loader.load_matrix`` is the entry point.

Deliberately empty: image nodes import ``builder.matrix.models``, and whatever this file imported would
join their import closure, so a change to validation code would change every key.
"""
