"""Asking every agent of a fleet inventory: shared by ``fleet status``, ``doctor`` and ``sync``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vifscope.cli.common import make_console
from vifscope.fleet.inventory import Inventory, InventoryError, load_inventory

if TYPE_CHECKING:
    from vifscope.fleet.model import HostAnswer


def ask(inv: Inventory, paths: Sequence[str], timeout: float, limit: int) -> list[HostAnswer]:
    """Every host's answer in inventory order. A token file that cannot be read is that host's
    error (the rest of the fleet is still asked)."""
    from vifscope.fleet.merge import OPTIONAL_PATHS, host_answer
    from vifscope.serve.fleetask import targets as fleet_targets
    from vifscope.sources.agents import fetch_all

    targets, early = fleet_targets(inv)
    replies = {
        r.name: r for r in fetch_all(targets, paths, timeout=timeout, limit=limit, optional=OPTIONAL_PATHS)
    } | early
    return [host_answer(h, replies[h.name]) for h in inv.hosts]


def load_or_say(path: Path) -> Inventory | None:
    """The inventory, or None after one error line and its hint on stderr."""
    try:
        return load_inventory(path)
    except InventoryError as exc:
        from rich.text import Text

        err = make_console(stderr=True)
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))  # Text: YAML's "[...]" is not markup
        if exc.hint:
            err.print(Text(f"  hint: {exc.hint}"))
        return None
