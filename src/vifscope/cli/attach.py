"""``vifscope attach DOMAIN (--bridge BR | --network NET | --ovs BR | --direct DEV[:mode])``:
hot-plug a NIC with a pool's MAC, verify it is ``bound`` on a fresh snapshot, roll back if not.

Exit codes: 0 attached and bound; 1 attached but verification failed (rolled back: the NIC
is gone, the MAC released) or libvirt refused the hot-plug; 2 refused before anything
changed (unknown domain, missing bridge/network, MAC in use, guest without ACPI hot-plug,
usage); 3 libvirt, the link dump, the store or the audit log is unavailable; 4 the pool is
exhausted.
"""

from __future__ import annotations

import argparse
import shlex
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog
from vifscope.actions.vifapply import DETACH_TIMEOUT_S, Outcome, run_attach
from vifscope.actions.vifplan import NicKind, NicRequest, Refused, check_attach, parse_direct, resolve_scope
from vifscope.cli.common import emit_json, make_console
from vifscope.cli.vifstore import Store, auto_book, choose_pool, explicit_book, open_store_view
from vifscope.model import HostSnapshot
from vifscope.model.devices import DomainView
from vifscope.model.mac import MacError, normalize_mac
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import LibvirtUnavailable, resolve_uri
from vifscope.sources.libvirt.devices import NoSuchDomain, read_domain
from vifscope.sources.snapshot import take_snapshot
from vifscope.store.engine import StoreError

DEFAULT_SETTLE = 3.0  # seconds verification keeps looking for "bound" before it rolls back
# An audit log that failed mid-run is a source the action needs (exit 3, as doctor --fix).
EXIT_BY_RESULT = {"attached": report.EXIT_OK, "detached": report.EXIT_OK, "audit-failed": report.EXIT_SOURCE}
EXIT_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (Refused, report.EXIT_USAGE),
    (MacError, report.EXIT_USAGE),
    (LibvirtUnavailable, report.EXIT_SOURCE),
    (AuditError, report.EXIT_SOURCE),
)


class SourceDown(Exception):
    """A source every answer needs (libvirt, the link dump) failed: exit 3."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def add_options(p: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """What attach and detach share: scope, store, audit log."""
    common(p)
    # Optional for argparse, as check-xml's FILEs: ``attach -c URI`` parses like every command,
    # and the missing DOMAIN is then one line and a hint (exit 2).
    p.add_argument("domain", nargs="?", metavar="DOMAIN", help="domain name or UUID")
    p.add_argument("--live", action="store_true", help="change the running guest (default when it runs)")
    p.add_argument("--config", action="store_true", help="change the persistent definition (default when shut off)")
    p.add_argument("--db", metavar="URL", help="MAC store URL (default: $VIFSCOPE_DB, [store] url, or SQLite)")
    p.add_argument("--audit-log", type=Path, metavar="PATH", help=f"audit log (default {DEFAULT_AUDIT_LOG})")


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "attach",
        help="hot-plug a NIC (pool MAC), verify it is bound, roll back if not",
        epilog="exit codes: 0 attached and bound, 1 failed (rolled back), 2 refused (nothing changed), "
        "3 a needed source is unavailable, 4 MAC pool exhausted",
    )
    add_options(p, common)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--bridge", metavar="BR", help="a Linux bridge")
    where.add_argument("--network", metavar="NET", help="a libvirt network")
    where.add_argument("--ovs", metavar="BR", help="an Open vSwitch bridge")
    where.add_argument("--direct", metavar="DEV[:MODE]", help="macvtap on DEV (mode vepa|bridge|private|passthrough)")
    p.add_argument("--mac", default="auto", metavar="auto|MAC", help="auto: allocate from a pool (default)")
    p.add_argument("--pool", metavar="NAME", help="the pool --mac auto takes from (needed when there are several)")
    p.add_argument("--model", default="virtio", help="NIC model (default virtio)")
    p.add_argument("--settle", type=float, default=DEFAULT_SETTLE, metavar="S", help="how long verify waits for bound")
    p.add_argument(
        "--timeout", type=float, default=DETACH_TIMEOUT_S, metavar="S", help="rollback: wait for the guest to let go"
    )
    p.set_defaults(func=cmd_attach)


def required(args: argparse.Namespace, usage: str) -> None:
    """DOMAIN (and whatever else ``usage`` shows) was given; Refused otherwise."""
    if not args.domain:
        raise Refused(f"{args.command}: a DOMAIN is required", f"usage: {usage}", "usage")


def request_of(args: argparse.Namespace) -> NicRequest:
    usage = "vifscope attach DOMAIN (--bridge BR | --network NET | --ovs BR | --direct DEV[:mode])"
    required(args, usage)
    if not any((args.bridge, args.network, args.ovs, args.direct)):
        raise Refused("attach: where to plug the NIC is required", f"usage: {usage}", "usage")
    mac = None if args.mac == "auto" else normalize_mac(args.mac)
    if args.direct is not None:
        dev, mode = parse_direct(args.direct)
        return NicRequest(NicKind.DIRECT, dev, mode, args.model, mac)
    kind, source = next((k, v) for k, v in ((NicKind.BRIDGE, args.bridge), (NicKind.NETWORK, args.network),
                                            (NicKind.OVS, args.ovs)) if v is not None)  # fmt: skip
    return NicRequest(kind, source, None, args.model, mac)


def domain_of(uri: str, name: str) -> DomainView:
    try:
        return read_domain(uri, name)
    except NoSuchDomain as exc:
        raise Refused(f"no domain named {name!r} on {uri}", "see 'virsh list --all'", "attach.no_domain") from exc


def local_snapshot(uri: str) -> HostSnapshot:
    """A fresh snapshot of this host; SourceDown / Refused when it cannot verify anything."""
    host = urlsplit(uri).hostname
    if host:
        raise Refused(
            f"verification reads this host's links, but {uri} is the libvirt of {host}",
            "run vifscope on that host itself",
        )
    snap = take_snapshot(uri)
    for err in snap.errors:
        if err.source in report.REQUIRED_SOURCES:
            raise SourceDown(err.error, err.hint or "fix the source first")
    return snap


def fail(args: argparse.Namespace, exc: Exception) -> int:
    """One line and a hint (or the JSON of them); the exit code the error says."""
    code = exc.exit_code if isinstance(exc, StoreError) else report.EXIT_SOURCE
    code = next((c for t, c in EXIT_BY_ERROR if isinstance(exc, t)), code)
    hint = getattr(exc, "hint", "") or ""
    if args.json:
        emit_json({"error": str(exc), "hint": hint or None, "check": getattr(exc, "check", None), "exit": code})
        return code
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    if hint:
        err.print(f"  hint: {hint}", highlight=False)
    return code


def outcome_doc(
    action: str, uri: str, dom: DomainView, out: Outcome, audit: Path, scope: tuple[str, ...]
) -> dict[str, Any]:
    """The ``attach --json`` / ``detach --json`` document; ``vif`` is the status contract's object."""
    return {
        "action": action,
        "result": out.status,
        "domain": dom.name,
        "uri": uri,
        "mac": out.mac,
        "pool": out.pool,
        "scope": list(scope),
        "released": out.released,
        "error": out.error,
        "vif": report.binding_dict(out.binding) if out.binding else None,
        "removal": _removal(out),
        "run": out.run,
        "audit_log": str(audit),
        "audit_errors": list(out.audit_errors),
    }


def _removal(out: Outcome) -> dict[str, Any] | None:
    r = out.removal
    return (
        None
        if r is None
        else {"status": r.status.value, "alias": r.alias, "waited_s": round(r.waited_s, 3), "via": r.via}
    )


def show(args: argparse.Namespace, doc: dict[str, Any], summary: str) -> int:
    code = EXIT_BY_RESULT.get(doc["result"], report.EXIT_PROBLEMS)
    if args.json:
        emit_json(doc)
        return code
    from vifscope.report.tables import vif_table

    out = make_console()
    if doc["vif"]:
        out.print(vif_table([doc["vif"]]))
    for line in doc["audit_errors"]:
        make_console(stderr=True).print(f"[yellow]warning:[/] {line}", highlight=False)
    out.print(summary, highlight=False)
    out.print(f"audit log: {doc['audit_log']} (run {doc['run']})", highlight=False)
    return code


def _summary(doc: dict[str, Any]) -> str:
    mac, pool = doc["mac"], f" from pool {doc['pool']}" if doc["pool"] else ""
    if doc["result"] == "attached":
        return f"attached {mac}{pool} to {doc['domain']} ({'+'.join(doc['scope'])}): verified"
    if doc["result"] == "rolled-back":
        gone = "; the MAC was released" if doc["released"] else ""
        return f"verification failed ({doc['error']}): the interface was detached again{gone}"
    if doc["result"] == "rollback-failed":
        detach, release = (shlex.join(["vifscope", "detach", doc["domain"], "--mac", mac]),
                           shlex.join(["vifscope", "mac", "release", mac]))  # fmt: skip
        return (
            f"verification failed and the rollback did not finish ({doc['error']}): the MAC stays allocated. "
            f"Detach it with: {detach} (if the guest let go meanwhile: {release})"
        )
    if doc["result"] == "audit-failed" and doc["action"] == "attach":
        return f"the audit log failed mid-run ({doc['error']}): the attach was undone"
    return f"{doc['result']}: {doc['error']}"


def _book(args: argparse.Namespace, req: NicRequest, store: Store | None, snap: HostSnapshot, domain: str) -> Any:
    if req.mac is None:
        pool = choose_pool(store, args.pool)
        assert store is not None  # choose_pool refuses without one
        return auto_book(store, pool, snap, domain)
    return explicit_book(store, req.mac, domain, socket.gethostname())


def need_bridge(req: NicRequest, snap: HostSnapshot) -> None:
    """A bridge no kernel link has may still be an OVS netdev bridge: with OVSDB unreadable,
    check-xml cannot say it is missing, so attach stops (exit 3) instead of trying libvirt."""
    if req.kind not in (NicKind.BRIDGE, NicKind.OVS) or req.source in snap.links_by_name:
        return
    err = next((e for e in snap.errors if e.source == "ovs"), None)
    if err is not None:
        raise SourceDown(
            f"cannot tell whether bridge {req.source} exists: no such kernel link, OVSDB unreadable ({err.error})",
            err.hint or "start ovsdb-server, or name an existing Linux bridge",
        )


def cmd_attach(args: argparse.Namespace) -> int:
    uri = resolve_uri(args.connect)
    audit_path = args.audit_log or DEFAULT_AUDIT_LOG
    try:
        req = request_of(args)
        dom = domain_of(uri, args.domain)
        scope = resolve_scope(dom, args.live, args.config)
        snap = local_snapshot(uri)
        store = open_store_view(args.db, snap.host)
        book = _book(args, req, store, snap, dom.name)
        check_attach(req, dom, scope, snap, store.view if store else None, req.mac)
        need_bridge(req, snap)
        audit = AuditLog(audit_path)
        audit.check_writable()
        outcome = run_attach(uri, dom, req, scope, book, audit, args.settle, args.timeout)
    except (Refused, MacError, LibvirtUnavailable, AuditError, StoreError, SourceDown) as exc:
        return fail(args, exc)
    doc = outcome_doc("attach", uri, dom, outcome, audit_path, scope.words())
    return show(args, doc, _summary(doc))
