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
from vifscope.cli.qosdscp import DSCP_HELP, bypass_warning, dscp_value, may_bypass, run_dscp, wants_dscp
from vifscope.model.qos import BandwidthRate
from vifscope.model.qosdscp import DscpError
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
    qos.add_argument("--dscp", metavar="NAME|NUM|none", help=DSCP_HELP)
    qos.add_argument("--audit-log", help=f"set: the audit log (default {DEFAULT_AUDIT_LOG})")


def _request(args: argparse.Namespace) -> SetRequest:
    if not args.name or not args.mac:
        raise RateError("qos set needs a DOMAIN and --mac MAC")
    if not (args.clear or args.inbound is not None or args.outbound is not None or args.dscp is not None):
        raise RateError("qos set needs --inbound, --outbound, --dscp or --clear")
    if args.dscp is not None:
        dscp_value(args)  # a bad value is a usage error before anything runs
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


def _rates(args: argparse.Namespace, req: SetRequest, path: Path) -> tuple[int, dict[str, Any]]:
    """The rate step: (exit code, its JSON document)."""
    audit = AuditLog(path)
    try:
        out = set_tc(req, audit) if args.backend == "tc" else set_libvirt(req, audit, read_shaping())
    except SiteUnavailable as exc:
        return exc.code, {"status": "unavailable", "error": str(exc), "hint": exc.hint}
    except AuditError as exc:
        return 3, {"status": "unavailable", "error": str(exc), "hint": exc.hint}
    if isinstance(out, Refusal):
        return 1, {"status": "refused", "error": out.message, "hint": out.hint}
    return EXIT[out.status], {**outcome_dict(req, args.backend, out, path), "_outcome": out}


def _print_rates(req: SetRequest, doc: dict[str, Any]) -> None:
    console = make_console()
    out: SetOutcome = doc["_outcome"]
    for cmd in out.commands:
        console.print(f"ran: {cmd}", highlight=False, markup=False)
    for cmd in out.rollback_commands:
        console.print(f"rolled back: {cmd}", highlight=False, markup=False)
    if out.judged is not None:
        for name, d in (("inbound: ", out.judged.inbound), ("outbound:", out.judged.outbound)):
            console.print(f"{name} {' '.join(direction_text(d).split(chr(10)))}", highlight=False, markup=False)
    console.print(f"{req.domain} {req.mac}: {out.status}" + (f" ({out.error})" if out.error else ""), markup=False)


def _print_dscp(req: SetRequest, doc: dict[str, Any]) -> None:
    console = make_console()
    for cmd in doc.get("commands", []):
        console.print(f"ran: {cmd}", highlight=False, markup=False)
    for cmd in doc.get("rollback_commands", []):
        console.print(f"rolled back: {cmd}", highlight=False, markup=False)
    mark = doc.get("in_force_name") or "none"
    err = f" ({doc['error']})" if doc.get("error") else ""
    console.print(f"{req.domain} {req.mac}: dscp {mark} in force, {doc['status']}{err}", markup=False)


def cmd_qos_set(args: argparse.Namespace) -> int:
    try:
        req = _request(args)
    except (RateError, DscpError) as exc:
        return _fail(args.json, str(exc), "see 'vifscope qos --help'", 2, "usage")
    path = Path(args.audit_log) if args.audit_log else DEFAULT_AUDIT_LOG
    code = 0
    doc: dict[str, Any] = {"domain": req.domain, "mac": req.mac, "status": "enforced"}
    if args.clear or args.inbound is not None or args.outbound is not None:
        code, doc = _rates(args, req, path)
        if "_outcome" not in doc:
            return _fail(args.json, doc["error"], doc["hint"], code, doc["status"])
        if not args.json:
            _print_rates(req, doc)
    if wants_dscp(args):
        mark = run_dscp(args, path)
        doc["dscp"] = mark
        code = max(code, {"enforced": 0, "cleared": 0, "unavailable": 3}.get(mark["status"], 1))
        if not args.json and "hint" in mark:
            return _fail(False, mark["error"], mark["hint"], code, mark["status"])
        if not args.json:
            _print_dscp(req, mark)
    warning = bypass_warning(args) if may_bypass(args) else None
    if warning is not None:
        doc["warnings"] = [warning]
        if not args.json:
            make_console(stderr=True).print(f"warning: {warning}", highlight=False, markup=False)
    if args.json:
        doc.pop("_outcome", None)
        emit_json(doc)
    return code
