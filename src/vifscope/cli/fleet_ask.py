"""Asking every agent of a fleet inventory: shared by ``fleet status``, ``doctor`` and ``sync``.

The inventory is ``--inventory FILE`` or the hosts table of the store at ``--db URL``
(``vifscope fleet hosts``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vifscope.cli.common import make_console
from vifscope.fleet.inventory import Inventory, InventoryError, load_inventory
from vifscope.report.documents import EXIT_USAGE

if TYPE_CHECKING:
    from vifscope.fleet.cache import AnswerCache
    from vifscope.fleet.inventory import FleetHost
    from vifscope.fleet.model import HostAnswer
    from vifscope.serve.fleetask import HostList
    from vifscope.sources.agents import AgentReply


def ask_replies(
    inv: Inventory, paths: Sequence[str], timeout: float, limit: int, cache: AnswerCache | None = None
) -> list[tuple[FleetHost, AgentReply]]:
    """Every host's reply in inventory order (asked with the answers ``cache`` holds). A token
    file that cannot be read is that host's error (the rest of the fleet is still asked)."""
    from vifscope.fleet.merge import OPTIONAL_PATHS
    from vifscope.serve.fleetask import targets as fleet_targets
    from vifscope.sources.agents import fetch_all

    targets, early = fleet_targets(inv, cache)
    replies = {
        r.name: r for r in fetch_all(targets, paths, timeout=timeout, limit=limit, optional=OPTIONAL_PATHS)
    } | early
    return [(h, replies[h.name]) for h in inv.hosts]


def ask(inv: Inventory, paths: Sequence[str], timeout: float, limit: int) -> list[HostAnswer]:
    from vifscope.fleet.merge import host_answer

    return [host_answer(h, r) for h, r in ask_replies(inv, paths, timeout, limit)]


def host_list(inventory: Path | None, db: str | None) -> HostList:
    """The file's hosts, or the store's; InventoryError / StoreError / StoreConfigError."""
    from vifscope.serve.fleetask import FileHosts, StoreHosts

    if inventory is not None:
        return FileHosts(load_inventory(inventory))
    from vifscope.store.engine import open_store, sqlite_missing
    from vifscope.store.url import load_store_config, redacted, resolve_url

    url = resolve_url(db, os.environ, load_store_config())
    if sqlite_missing(url):
        raise InventoryError(f"{redacted(url)}: no such store", "add hosts: vifscope fleet hosts add NAME URL --db URL")
    return StoreHosts(open_store(url), redacted(url))


def read_or_say(inventory: Path | None, db: str | None) -> tuple[HostList | None, Inventory | None, int]:
    """(host list, its hosts now, 0), or (None, None, exit code) after one error line and its
    hint on stderr: 2 for a bad inventory, 3 for a store that cannot be read."""
    from vifscope.store.engine import StoreError
    from vifscope.store.url import StoreConfigError

    try:
        hosts = host_list(inventory, db)
        return hosts, hosts.read(), 0
    except InventoryError as exc:
        say(str(exc), exc.hint)
        return None, None, EXIT_USAGE
    except StoreError as exc:
        say(str(exc), exc.hint)
        return None, None, exc.exit_code
    except StoreConfigError as exc:
        say(str(exc), "")
        return None, None, EXIT_USAGE


def say(message: str, hint: str) -> None:
    from rich.text import Text

    err = make_console(stderr=True)
    err.print(Text.assemble(("error: ", "bold red"), message))  # Text: YAML's "[...]" is not markup
    if hint:
        err.print(Text(f"  hint: {hint}"))
