"""Reading ``/etc/vifscope/vifscope.toml``: the parts every section's reader shares.

doctor (``[doctor]``), serve (``[serve]``) and watch (``[watch]``, ``[heal]``) each validate
their own keys; how the text becomes a document and a section becomes a table, and what the
errors say when it does not, is the same for all three and lives here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any


def toml_doc(text: str, error: type[Exception], where: str = "") -> dict[str, Any]:
    """The parsed document; ``error("<where>: not valid TOML: ...")`` when it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML: {exc}" if where else f"not valid TOML: {exc}") from exc


def toml_table(doc: Mapping[str, Any], name: str, error: type[Exception], where: str = "") -> dict[str, Any]:
    """The ``[name]`` table ({} when absent); ``error`` when ``name`` is not a table."""
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise error(f"{where}: [{name}] must be a table" if where else f"[{name}] must be a table")
    return table
