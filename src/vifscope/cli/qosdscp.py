"""``qos set ... --dscp NAME|NUM|none`` (and ``--clear``): the priority-mark step of ``qos set``,
independent of the rate backend (marks live in nft, rates in tc or libvirt)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosdscp import DscpRequest, set_dscp
from vifscope.model.qosdscp import dscp_name, parse_dscp
from vifscope.sources.kernel.nftdscp import NftUnavailable
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.qosset import SiteUnavailable, read_vif

DSCP_HELP = "set: mark the guest's outbound IPv4/IPv6 with this DSCP (ef, af41, cs1, ... or 0-63; none: unmark)"


def wants_dscp(args: argparse.Namespace) -> bool:
    return args.dscp is not None or bool(args.clear)


def dscp_value(args: argparse.Namespace) -> int | None:
    """The requested mark (None: remove). Raises DscpError (a ValueError) on a bad value."""
    if args.clear or str(args.dscp).lower() == "none":
        return None
    return parse_dscp(args.dscp)


def run_dscp(args: argparse.Namespace, audit: Path) -> dict[str, Any]:
    """Run the mark step; a JSON-able outcome (``status`` as qos set's)."""
    uri = resolve_uri(args.connect)
    value = dscp_value(args)
    try:
        read = read_vif(uri, args.name, args.mac.lower())
    except SiteUnavailable as exc:
        return {"status": "unavailable", "error": str(exc), "hint": exc.hint}
    stopped_clear = value is None and not read.running  # the persistent mark, and a chain its tap left
    if not stopped_clear and (not read.running or not read.site.ifindex):
        return {"status": "refused", "error": f"{args.name} {args.mac}: no tap to mark (domain not running?)"}
    flags = tuple(f for f, on in (("--live", args.live), ("--config", args.config)) if on) or ("--live", "--config")
    flags = ("--config",) if stopped_clear else flags
    req = DscpRequest(uri, args.name, args.mac.lower(), value, flags)
    try:
        out = set_dscp(req, AuditLog(audit), read.site.dev)
    except NftUnavailable as exc:
        return {"status": "unavailable", "error": str(exc), "hint": "install nftables (nft)"}
    got = out.in_force.value if out.in_force else None
    return {
        "status": out.status, "dev": read.site.dev, "declared": value, "in_force": got,
        "in_force_name": dscp_name(got) if got is not None else None, "error": out.error,
        "commands": [shlex.join(c) for c in out.commands],
        "rollback_commands": [shlex.join(c) for c in out.rollback_commands],
    }  # fmt: skip
