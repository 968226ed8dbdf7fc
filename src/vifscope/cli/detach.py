"""``vifscope detach DOMAIN --mac MAC``: unplug a NIC, wait for libvirt's DEVICE_REMOVED
event, and give its MAC back to the pool (quarantined).

Exit codes: 0 removed (and released if the store held it); 1 libvirt refused, or the guest
did not release the device within ``--timeout`` (DEVICE_REMOVAL_FAILED or no event: the MAC
is kept); 2 refused (unknown domain, no such interface, usage); 3 libvirt, the store or the
audit log is unavailable.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from typing import Any

from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog
from vifscope.actions.vifapply import DETACH_TIMEOUT_S, run_detach
from vifscope.actions.vifplan import Refused, find_interface, resolve_scope
from vifscope.cli.attach import add_options, domain_of, fail, outcome_doc, required, show
from vifscope.cli.vifstore import detach_release, open_store_view
from vifscope.model.mac import MacError, normalize_mac
from vifscope.sources.libvirt.conn import LibvirtUnavailable, resolve_uri
from vifscope.store.engine import StoreError


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "detach",
        help="unplug a NIC by MAC, wait for libvirt's DEVICE_REMOVED, release the MAC",
        epilog="exit codes: 0 removed, 1 not removed (guest refused / timeout), 2 refused, 3 a source is unavailable",
    )
    add_options(p, common)
    p.add_argument("--mac", metavar="MAC", help="the interface's MAC (required)")
    p.add_argument(
        "--timeout", type=float, default=DETACH_TIMEOUT_S, metavar="S", help="wait for the guest to release it"
    )
    p.set_defaults(func=cmd_detach)


def _summary(doc: dict[str, Any]) -> str:
    if doc["result"] == "detached":
        kept = "released to its pool (quarantined)" if doc["released"] else "not in the store: nothing to release"
        return f"detached {doc['mac']} from {doc['domain']} ({'+'.join(doc['scope'])}); MAC {kept}"
    if doc["result"] == "not-removed":
        return (
            f"not removed: {doc['error']}; the MAC stays allocated. The guest may still let go: "
            f"check 'virsh domiflist {doc['domain']}', then 'vifscope mac release {doc['mac']}'"
        )
    return f"{doc['result']}: {doc['error']}"


def cmd_detach(args: argparse.Namespace) -> int:
    uri = resolve_uri(args.connect)
    audit_path = args.audit_log or DEFAULT_AUDIT_LOG
    try:
        required(args, "vifscope detach DOMAIN --mac MAC")
        if not args.mac:
            raise Refused("detach: --mac is required", "usage: vifscope detach DOMAIN --mac MAC", "usage")
        mac = normalize_mac(args.mac)
        dom = domain_of(uri, args.domain)
        scope = resolve_scope(dom, args.live, args.config)
        vif = find_interface(dom, mac, scope)
        store = open_store_view(args.db, socket.gethostname())
        audit = AuditLog(audit_path)
        audit.check_writable()
        outcome = run_detach(uri, dom, vif, scope, detach_release(store), audit, args.timeout)
    except (Refused, MacError, LibvirtUnavailable, AuditError, StoreError) as exc:
        return fail(args, exc)
    doc = outcome_doc("detach", uri, dom, outcome, audit_path, scope.words())
    return show(args, doc, _summary(doc))
