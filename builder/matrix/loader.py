"""Read a matrix file into a validated ``Matrix``, or raise one InputError listing every problem."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from builder.errors import InputError, Problem
from builder.matrix import rawtext
from builder.matrix.checks import check_matrix
from builder.matrix.models import Matrix
from builder.matrix.yamlsrc import Located, Path, load_located


def _unwrap(tp: Any) -> Any:
    """Strip Annotated/Optional so we can walk to the model a location points into."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        else:
            return tp


def _model_at(path: Path) -> type[BaseModel] | None:
    """The model class whose keys live at ``path`` (for 'did you mean' hints)."""
    tp: Any = Matrix
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


# Values YAML 1.1 (PyYAML's default) would have turned into numbers or booleans.
_YAML11 = re.compile(r"(?i:y|n|yes|no|on|off)|[-+]?(0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+|[0-9][0-9_]*(:[0-5]?[0-9])+"
                     r"|[0-9][0-9_]*)(\.[0-9_]*)?")


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "a number",
            type(None): "nothing"}.get(type(value), type(value).__name__)
    return kind if isinstance(value, (dict, list, type(None))) else f"{kind} {value!r}"


def _message(err: Any, path: Path) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f" (allowed: {', '.join(allowed)})" if allowed else "")
        return f"unknown key{hint}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}; got {value!r}"
    if kind in ("list_type", "dict_type", "model_type", "model_attributes_type", "string_type",
                "int_type", "int_parsing", "bool_type", "bool_parsing", "int_from_float"):
        want = {"list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
                "model_attributes_type": "a mapping", "string_type": "text", "bool_type": "true or false",
                "bool_parsing": "true or false"}.get(kind, "a whole number")
        hint = " (YAML 1.1 literals such as yes, on, 0777 or 54:32 are text here)" if (
            want in ("a whole number", "true or false") and isinstance(value, str)
            and _YAML11.fullmatch(value)) else ""
        return f"wrong type: must be {want}, got {_describe(value)}{hint}"
    if kind == "too_short":
        return "must not be empty"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"out of range: {err['msg'].lower()}, got {value!r}"
    return str(err["msg"])


def _schema_problems(exc: ValidationError, loc: Located) -> list[Problem]:
    problems = []
    for err in exc.errors():
        raw = tuple(err["loc"])
        path: Path = tuple(p for p in raw if p != "[key]")
        problems.append(loc.problem(path, _message(err, path)))
    return problems


def parse_matrix(text: str | bytes, file: str) -> tuple[Matrix, Located]:
    """Validate matrix text (or the file's bytes); ``file`` is only used to name locations in errors."""
    text = rawtext.decode(text, file) if isinstance(text, bytes) else rawtext.check_text(text, file)
    loc = load_located(text, file)
    if not isinstance(loc.data, dict):
        raise InputError([loc.problem((), f"wrong type: the matrix must be a mapping, got {_describe(loc.data)}")])
    try:
        matrix = Matrix.model_validate(loc.data)
    except ValidationError as exc:
        raise InputError(_schema_problems(exc, loc)) from None
    problems = check_matrix(matrix, loc)
    if problems:
        raise InputError(problems)
    return matrix, loc


def load_matrix(path: FsPath) -> Matrix:
    """Read and validate ``path``; raise InputError naming file, line and field for every problem."""
    try:
        with path.open("rb") as stream:
            data = stream.read(rawtext.MAX_BYTES + 1)
    except OSError as exc:
        raise InputError([Problem(str(path), 0, "", f"cannot read matrix: {exc.strerror or exc}")]) from None
    return parse_matrix(data, str(path))[0]
