"""Typed reads of the JSON host commands print (``ip -j``, ``tc -j``, ``nft -j``): each parser
reads objects, integers and strings through these, so a document of another shape is one
documented error, JsonShapeError, instead of whatever a wrong type happens to raise deep in a
parser -- or, worse, a wrong type stored in a model for a check to trip over later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EMPTY: Mapping[str, Any] = {}


class JsonShapeError(ValueError):
    """A command's JSON is not of the shape that command prints (what is wrong, and where)."""


def obj(value: Any, what: str) -> Mapping[str, Any]:
    """A JSON object; a missing (null) one reads as empty."""
    if value is None:
        return EMPTY
    if isinstance(value, Mapping):
        return value
    raise JsonShapeError(f"{what}: expected an object, got {type(value).__name__}")


def items(value: Any, what: str) -> list[Any]:
    """A JSON array; a missing (null) one reads as empty."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    raise JsonShapeError(f"{what}: expected an array, got {type(value).__name__}")


def objs(value: Any, what: str) -> list[Mapping[str, Any]]:
    """A JSON array of objects."""
    return [obj(v, what) for v in items(value, what)]


def opt_int(value: Any, what: str) -> int | None:
    """An integer or null (JSON true/false are not numbers here)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise JsonShapeError(f"{what}: expected an integer, got {type(value).__name__}")


def opt_str(value: Any, what: str) -> str | None:
    """A string or null."""
    if value is None or isinstance(value, str):
        return value
    raise JsonShapeError(f"{what}: expected a string, got {type(value).__name__}")


def strs(value: Any, what: str) -> list[str]:
    """An array of strings; a missing one reads as empty."""
    out = items(value, what)
    for v in out:
        opt_str(v, what)
    return out
