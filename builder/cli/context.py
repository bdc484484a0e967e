"""What every command shares: where the matrix is, and how to load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.matrix.loader import load_matrix
from builder.matrix.models import Matrix


@dataclass(frozen=True)
class CliContext:
    matrix_path: Path

    def matrix(self) -> Matrix:
        return load_matrix(self.matrix_path)
