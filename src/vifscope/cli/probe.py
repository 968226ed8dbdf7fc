"""``vifscope doctor DOMAIN --probe``, the front end: run the probe over a domain's vifs, turn
each failing hop into a diagnosis, print it (table or ``--json``). The probing is ``probe``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from vifscope.model import HostSnapshot, VifBinding, VifStatus
from vifscope.probe.hops import (
    ProbeInterrupted,
    VifProbe,
    probe_vif,
    raise_interrupted,
    signal_handlers,
    valid_address_option,
)
from vifscope.report import documents as report
from vifscope.report.tables import make_console
from vifscope.sources.probe_net import probe_names, sweep_stale

_FIX_HINT = "vifscope doctor --fix re-plugs it"
DIAGNOSIS: dict[str, str] = {
    "bridge": "the vif's bridge is missing or down: nothing on it can be reached",
    "probe-port": "the bridge does not forward on a new port: the guest's port is no better",
    "address": "the guest's address is unknown, so it cannot be probed (pass --address A.B.C.D/NN)",
    "arp": "the guest does not answer ARP on its bridge: its NIC is not up or not addressed as expected",
    "icmp": "ARP works but ping does not: a filter drops it (nwfilter, host firewall with br_netfilter, guest)",
}


def diagnose(p: VifProbe) -> str:
    """One line: the failing hop's meaning, sharpened by the passive binding verdict."""
    failed, b = p.failed_hop, p.binding
    if failed is None:
        return f"reachable: {p.address.ip if p.address else '?'} answers ARP and ping through {b.expect.bridge}"
    if failed.name in ("arp", "icmp") and b.status != VifStatus.BOUND:
        return f"{failed.name} fails because the vif is {b.status.value}: {b.detail} ({_FIX_HINT})"
    return DIAGNOSIS[failed.name]


def probe_dict(p: VifProbe) -> dict[str, Any]:
    b, failed = p.binding, p.failed_hop
    return {
        "domain": b.vif.domain,
        "index": b.vif.index,
        "mac": b.vif.mac,
        "target": b.vif.target,
        "type": b.vif.type,
        "bridge": b.expect.bridge,
        "attach": b.expect.attach,
        "binding": {"status": b.status.value, "problems": [x.value for x in b.problems], "detail": b.detail},
        "address": f"{p.address.ip}/{p.address.prefix}" if p.address else None,
        "address_source": p.address.source if p.address else None,
        "probe_address": p.probe_address,
        "hops": [{"hop": h.name, "ok": h.ok, "detail": h.detail} for h in p.hops],
        "failed_hop": failed.name if failed else None,
        "reachable": failed is None,
        "diagnosis": diagnose(p),
        "leftover": list(p.leftover),
    }


def _not_probed(b: VifBinding) -> dict[str, Any]:
    why = (
        "the domain is not running"
        if not b.vif.domain_state.has_taps
        else f"{b.expect.attach} vifs are not probed (only Linux and OVS bridges): {b.detail}"
    )
    return {"index": b.vif.index, "mac": b.vif.mac, "type": b.vif.type, "reason": why}


def _render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    out = make_console()
    for v in doc["vifs"]:
        table = Table(title=f"{v['domain']} #{v['index']} {v['mac']} on {v['bridge']}", header_style="bold")
        for col in ("HOP", "RESULT", "DETAIL"):
            table.add_column(col, overflow="fold")
        for h in v["hops"]:
            mark = {True: "[green]ok[/]", False: "[bold red]FAIL[/]", None: "[dim]-[/]"}[h["ok"]]
            table.add_row(h["hop"], mark, h["detail"])
        out.print(table)
        out.print(f"binding: {v['binding']['status']} ({v['binding']['detail']})", highlight=False, markup=False)
        out.print(f"diagnosis: {v['diagnosis']}", highlight=False, markup=False)
    for n in doc["not_probed"]:
        out.print(f"not probed: #{n['index']} {n['mac']} ({n['type']}): {n['reason']}", highlight=False, markup=False)


def _fail(message: str, hint: str, code: int) -> int:
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    err.print(f"  hint: {hint}", highlight=False)
    return code


def _probe_all(chosen: Sequence[VifBinding], snap: HostSnapshot, option: str | None) -> list[VifProbe]:
    names = probe_names(os.getpid())
    # SIGINT stays KeyboardInterrupt; SIGTERM / SIGHUP become ProbeInterrupted: finally blocks run.
    with signal_handlers(raise_interrupted, (signal.SIGTERM, signal.SIGHUP)):
        return [probe_vif(b, snap, names, option) for b in chosen]


def run_probe(args: argparse.Namespace, snapshot: HostSnapshot, bindings: Sequence[VifBinding]) -> int:
    """Entry point for ``doctor DOMAIN --probe``. Exit 0 every probed vif answers, 1 one does not,
    2 unknown domain or nothing to probe, 3 a needed source or privilege is missing."""
    name = args.probe_domain
    mine = [b for b in bindings if name in (b.vif.domain, b.vif.domain_uuid)]
    if any(snapshot.failed(s) for s in report.REQUIRED_SOURCES):
        err = next(e for e in snapshot.errors if e.source in report.REQUIRED_SOURCES)
        return _fail(err.error, err.hint or "fix the source first", report.EXIT_SOURCE)
    if not mine:
        return _fail(f"no domain {name} (or it has no interfaces)", "see 'vifscope status'", report.EXIT_USAGE)
    probeable = [b for b in mine if b.vif.domain_state.has_taps and b.expect.attach in ("linux-bridge", "ovs-bridge")]
    if not probeable:
        return _fail(
            f"{name} has no running bridge or network vif to probe", "see 'vifscope status'", report.EXIT_USAGE
        )
    option = getattr(args, "address", None)
    if option and not valid_address_option(option):
        return _fail(f"--address {option} is not an IPv4 address", "e.g. --address 192.0.2.10/24", report.EXIT_USAGE)
    if os.geteuid() != 0:
        return _fail("the probe creates a network namespace and a veth", "run it as root", report.EXIT_SOURCE)
    swept = sweep_stale()
    try:
        results = _probe_all(probeable, snapshot, option)
    except (KeyboardInterrupt, ProbeInterrupted) as exc:
        signum = exc.signum if isinstance(exc, ProbeInterrupted) else signal.SIGINT
        make_console(stderr=True).print(f"probe interrupted ({signal.Signals(signum).name}); removed what it made")
        return 128 + int(signum)
    doc = {
        "domain": mine[0].vif.domain,
        "uuid": mine[0].vif.domain_uuid,
        "vifs": [probe_dict(p) for p in results],
        "not_probed": [_not_probed(b) for b in mine if b not in probeable],
        "swept": list(swept),
        "source_errors": report.errors_list(snapshot.errors),
    }
    if args.json:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _render(doc)
    return report.EXIT_OK if all(p.failed_hop is None for p in results) else report.EXIT_PROBLEMS
