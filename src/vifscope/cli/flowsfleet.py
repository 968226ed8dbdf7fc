"""``vifscope flows --inventory FILE | --db URL``: peers that are not this host's vifs named
after the vif another fleet host's agent reports (``host/domain``). The fleet is asked as
``fleet status`` asks it (the same inventory, token and CA files, cli.fleet_ask); a host that
does not answer is one source error, and this host's own naming is unaffected."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vifscope.model import SourceError
from vifscope.model.fleetvif import FleetPeerVif

FleetPeers = tuple[tuple[FleetPeerVif, ...], tuple[SourceError, ...]]
DEFAULT_TIMEOUT = 5.0
CONCURRENCY = 32


def add_fleet_options(p: Any) -> None:
    from vifscope.cli.fleet import _positive

    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--inventory", type=Path, metavar="FILE", help="name peers on other hosts too: the fleet's hosts (YAML)"
    )
    which.add_argument("--db", metavar="URL", help="... or the hosts table of this store (vifscope fleet hosts)")
    p.add_argument(
        "--fleet-timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds per fleet host (default {DEFAULT_TIMEOUT:g})",
    )


def fleet_peers(args: argparse.Namespace) -> FleetPeers | int:
    """The fleet's vifs and unanswered hosts; () without --inventory / --db; the exit code
    (after an error line) when the inventory itself cannot be read."""
    if args.inventory is None and args.db is None:
        return (), ()
    from vifscope.cli.fleet_ask import ask, read_or_say
    from vifscope.fleet.merge import STATUS_PATHS
    from vifscope.fleet.peers import peer_vifs

    _, inv, code = read_or_say(args.inventory, args.db)
    if inv is None:
        return code
    return peer_vifs(ask(inv, STATUS_PATHS, args.fleet_timeout, CONCURRENCY))
