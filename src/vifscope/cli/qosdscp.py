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
from vifscope.sources.kernel.nftdscp import NftUnavailable, read_dscp_marks
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.qosset import SiteUnavailable, read_shaping_of, read_vif

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


def may_bypass(args: argparse.Namespace) -> bool:
    """This run adds a mark or a tc-backend outbound cap: the two exclude each other."""
    marking = args.dscp is not None and str(args.dscp).lower() != "none"
    return not args.clear and (marking or (args.backend == "tc" and args.outbound is not None))


def bypass_warning(args: argparse.Namespace) -> str | None:
    """When the vif's tap now has both a mark chain and an ingress redirect (the tc backend's
    ifb): tc's ingress runs first and ifb re-injects past nft's hook, so the mark never applies."""
    try:
        dev = read_vif(resolve_uri(args.connect), args.name, args.mac.lower()).site.dev
        _qd, tc = read_shaping_of(frozenset({dev}))
        marks = read_dscp_marks()
    except (SiteUnavailable, NftUnavailable):
        return None
    ifb = tc.redirect_by_dev.get(dev)
    if ifb is None or dev not in marks:
        return None
    return (
        f"{dev}'s ingress is redirected to {ifb} (--backend tc --outbound): its packets bypass nft's ingress "
        "hook, so the DSCP mark never applies (doctor: qos.mark_bypassed); keep one of the two"
    )
