"""``vifscope qos set DOMAIN --mac MAC``: set a vif's rates through libvirt (``domiftune``) or
vifscope's tc backend, verify them on a fresh read, roll back when they are not in force."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog
from vifscope.actions.qosapply import SetOutcome
from vifscope.actions.qosplan import Refusal
from vifscope.actions.qosset import SetRequest, set_libvirt, set_tc
from vifscope.cli.common import emit_json, make_console
from vifscope.model.qos import BandwidthRate
from vifscope.report.qos import direction_dict, direction_text
from vifscope.sources.kernel.kconfig import read_shaping
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.qosset import SiteUnavailable

EXIT = {"enforced": 0, "cleared": 0, "rolled-back": 1, "rollback-failed": 1, "failed": 1}
RATE_HELP = "AVG[,PEAK[,BURST]]: average and peak in kB/s, burst in KiB (libvirt's units); 0 removes the direction"


class RateError(ValueError):
    pass


def parse_rate(text: str | None) -> BandwidthRate | None:
    """``AVG[,PEAK[,BURST]]`` as ``virsh domiftune`` takes it (empty fields: unset)."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) > 3 or not all(p.strip().isdecimal() or not p.strip() for p in parts) or not parts[0].strip():
        raise RateError(f"bad rate {text!r}: expected {RATE_HELP}")
    values = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
    return BandwidthRate(values[0], values[1], values[2])


def add_set_arguments(qos: argparse.ArgumentParser) -> None:
    qos.add_argument("name", nargs="?", metavar="DOMAIN", help="set: the domain")
    qos.add_argument("--mac", help="set: the vif's MAC address")
    qos.add_argument("--inbound", metavar="AVG[,PEAK[,BURST]]", help=f"set: the guest's inbound; {RATE_HELP}")
    qos.add_argument("--outbound", metavar="AVG[,PEAK[,BURST]]", help="set: the guest's outbound (same form)")
    qos.add_argument("--clear", action="store_true", help="set: remove both directions")
    qos.add_argument("--live", action="store_true", help="set: the running domain only")
    qos.add_argument("--config", action="store_true", help="set: the persistent definition (default: both)")
    qos.add_argument("--backend", choices=["libvirt", "tc"], default="libvirt", help="set: who enforces")
    qos.add_argument("--audit-log", help=f"set: the audit log (default {DEFAULT_AUDIT_LOG})")


def _request(args: argparse.Namespace) -> SetRequest:
    if not args.name or not args.mac:
        raise RateError("qos set needs a DOMAIN and --mac MAC")
    if not (args.clear or args.inbound is not None or args.outbound is not None):
        raise RateError("qos set needs --inbound, --outbound or --clear")
    return SetRequest(
        resolve_uri(args.connect), args.name, args.mac.lower(), parse_rate(args.inbound), parse_rate(args.outbound),
        args.inbound is not None, args.outbound is not None, args.clear, args.live, args.config,
    )  # fmt: skip


def _fail(as_json: bool, message: str, hint: str, code: int, status: str) -> int:
    if as_json:
        emit_json({"status": status, "error": message, "hint": hint})
    else:
        err = make_console(stderr=True)
        err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
        err.print(f"  hint: {hint}", highlight=False, markup=False)
    return code


def outcome_dict(req: SetRequest, backend: str, out: SetOutcome, audit: Path) -> dict[str, Any]:
    j = out.judged
    return {
        "domain": req.domain, "mac": req.mac, "backend": backend, "status": out.status, "run": out.run,
        "verdict": j.verdict.value if j else None,
        "inbound": direction_dict(j.inbound) if j else None, "outbound": direction_dict(j.outbound) if j else None,
        "commands": list(out.commands), "rollback_commands": list(out.rollback_commands), "error": out.error,
        "audit_log": str(audit), "audit_errors": list(out.audit_errors),
    }  # fmt: skip


def cmd_qos_set(args: argparse.Namespace) -> int:
    try:
        req = _request(args)
    except RateError as exc:
        return _fail(args.json, str(exc), "see 'vifscope qos --help'", 2, "usage")
    path = Path(args.audit_log) if args.audit_log else DEFAULT_AUDIT_LOG
    audit = AuditLog(path)
    try:
        out = set_tc(req, audit) if args.backend == "tc" else set_libvirt(req, audit, read_shaping())
    except SiteUnavailable as exc:
        return _fail(args.json, str(exc), exc.hint, exc.code, "unavailable")
    except AuditError as exc:
        return _fail(args.json, str(exc), exc.hint, 3, "unavailable")
    if isinstance(out, Refusal):
        return _fail(args.json, out.message, out.hint, 1, "refused")
    doc = outcome_dict(req, args.backend, out, path)
    if args.json:
        emit_json(doc)
        return EXIT[out.status]
    console = make_console()
    for cmd in out.commands:
        console.print(f"ran: {cmd}", highlight=False, markup=False)
    for cmd in out.rollback_commands:
        console.print(f"rolled back: {cmd}", highlight=False, markup=False)
    if out.judged is not None:
        for name, d in (("inbound: ", out.judged.inbound), ("outbound:", out.judged.outbound)):
            console.print(f"{name} {' '.join(direction_text(d).split(chr(10)))}", highlight=False, markup=False)
    console.print(f"{req.domain} {req.mac}: {out.status}" + (f" ({out.error})" if out.error else ""), markup=False)
    return EXIT[out.status]
