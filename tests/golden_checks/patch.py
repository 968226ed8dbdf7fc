"""JSON patches for golden-checks cases: a fault case states what it changes in its base's
files as ops on their JSON documents. Strict on paths: a path the base does not have is an
error, so a typo cannot silently create a key no parser reads (and leave the case testing its
base instead of its fault). New keys are created only by an explicit ``add``."""

from __future__ import annotations

from typing import Any


class PatchError(ValueError):
    """A case's patch names a path its base does not have, or an op the loader does not know.
    A typo must fail the case, not silently create a key the parsers never read."""


OPS = frozenset({"at", "where", "set", "add", "drop", "append"})


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else ():
        if not isinstance(doc, dict) or part not in doc:
            raise PatchError(f"no key {part!r} on the way to {dotted!r}")
        doc = doc[part]
    return doc


def _parent(item: Any, dotted: str) -> tuple[dict[str, Any], str]:
    *path, last = dotted.split(".")
    parent = _dig(item, ".".join(path))
    if not isinstance(parent, dict):
        raise PatchError(f"{dotted!r}: {'.'.join(path) or 'the item'} is not an object")
    return parent, last


def _set(item: Any, dotted: str, value: Any) -> None:
    """Replace an existing key; null deletes it (e.g. "master": null: the tap leaves its bridge)."""
    parent, last = _parent(item, dotted)
    if last not in parent:
        raise PatchError(f'set {dotted!r}: no such key (a new key is an explicit "add")')
    if value is None:
        del parent[last]
    else:
        parent[last] = value


def _add(item: Any, dotted: str, value: Any) -> None:
    """Create a key the base does not have (its parent must exist)."""
    parent, last = _parent(item, dotted)
    if last in parent:
        raise PatchError(f'add {dotted!r}: the key exists already (use "set")')
    parent[last] = value


def _matches(item: Any, where: dict[str, Any]) -> bool:
    try:
        return all(_dig(item, k) == v for k, v in where.items())
    except PatchError:
        return False  # items of one list differ in shape (an nft rule has no "chain.name")


def _select(target: Any, op: dict[str, Any]) -> list[Any]:
    if "where" not in op:
        return [target]
    if not isinstance(target, list):
        raise PatchError(f"where needs a list: {op}")
    for key in op["where"]:
        if not any(_has(x, key) for x in target):
            raise PatchError(f"where {key!r}: no item has that key: {op}")
    items = [x for x in target if _matches(x, op["where"])]
    if not items:
        raise PatchError(f"patch matches nothing: {op}")
    return items


def _has(item: Any, dotted: str) -> bool:
    try:
        _dig(item, dotted)
    except PatchError:
        return False
    return True


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Edit a JSON document: each op picks list items (``at`` + ``where``) or the whole dict,
    then ``set``s existing dotted keys (null deletes), ``add``s new ones, ``drop``s the items,
    or ``append``s new items. Any path the document does not have raises PatchError."""
    for op in ops:
        if unknown := set(op) - OPS:
            raise PatchError(f"unknown patch op key(s) {sorted(unknown)}: {op}")
        target = _dig(doc, op.get("at", ""))
        if "append" in op:
            if not isinstance(target, list):
                raise PatchError(f"append needs a list: {op}")
            target.extend(op["append"])
            continue
        if op.get("drop") and "where" not in op:
            raise PatchError(f"drop needs a where: {op}")
        for item in _select(target, op):
            if op.get("drop"):
                target.remove(item)
            for key, value in op.get("set", {}).items():
                _set(item, key, value)
            for key, value in op.get("add", {}).items():
                _add(item, key, value)
    return doc
