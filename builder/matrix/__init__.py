"""The matrix: what to build. ``load_matrix`` is the entry point."""

from builder.matrix.loader import load_matrix, parse_matrix
from builder.matrix.models import ALL_TARGETS, Matrix, Target

__all__ = ["ALL_TARGETS", "Matrix", "Target", "load_matrix", "parse_matrix"]
