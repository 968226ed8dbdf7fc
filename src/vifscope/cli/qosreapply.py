"""``vifscope qos reapply [-d DOMAIN]``: rebuild every tc-backend policy (the domains'
vifscope metadata) that is not in force -- after a domain restart or a hot-plug re-created its
tap, or someone removed the qdiscs. Each vif goes through ``qos set``'s own path (plan → apply
→ fresh read → verify → roll back; audit-logged, actor ``qos``) with the rates its metadata
declares; then every declared DSCP mark missing from (or different in) nft's vifscope_qos
table is set again. What ``watch --heal`` runs on a re-created tap.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vifscope.actions.audit import DEFAULT_AUDIT_LOG, AuditError, AuditLog
from vifscope.actions.qosdscp import remark
from vifscope.actions.qosreapply import due, reapply_one
from vifscope.bind.qos import POLICY_WHERE
from vifscope.cli.common import emit_json, make_console
from vifscope.model import HostSnapshot
from vifscope.model.qos import VifQos
from vifscope.sources.kernel.nftdscp import NftUnavailable
from vifscope.sources.qos import QosSources

NEEDED = frozenset({"libvirt", "netlink", "tc"})  # without these, nothing can be judged or rebuilt


def cmd_qos_reapply(args: argparse.Namespace, judged: tuple[HostSnapshot, QosSources, tuple[VifQos, ...]]) -> int:
    snap, src, vifs = judged
    fatal = [e for e in (*snap.errors, *src.errors) if e.source in NEEDED]
    if fatal:
        first = fatal[0]
        make_console(stderr=True).print(f"error: {first.error}\n  hint: {first.hint}", markup=False, highlight=False)
        return 3
    audit = AuditLog(Path(args.audit_log) if args.audit_log else DEFAULT_AUDIT_LOG)
    todo = due(vifs)
    marked = [v for v in snap.vifs if v.dscp_mark is not None and v.domain_state.has_taps and v.target
              and v.target in snap.links_by_name]  # fmt: skip
    try:
        if todo or marked:
            audit.check_writable()
        done = [reapply_one(snap.uri, q, audit) for q in todo]
        remarked = remark(marked, audit, dry_run=False) if marked else []
    except AuditError as exc:
        make_console(stderr=True).print(f"error: {exc}\n  hint: {exc.hint}", markup=False, highlight=False)
        return 3
    except NftUnavailable as exc:
        make_console(stderr=True).print(f"error: {exc}\n  hint: install nftables (nft)", markup=False, highlight=False)
        return 3
    code = 0 if all(d["status"] == "enforced" for d in (*done, *remarked)) else 1
    if args.json:
        in_force = sum(q.where == POLICY_WHERE for q in vifs) - len(todo)
        emit_json({"reapplied": done, "in_force": in_force, "remarked": remarked})
        return code
    console = make_console()
    for d in done:
        console.print(f"{d['domain']} {d['mac']} ({d['was']}): {d['status']}", markup=False, highlight=False)
    for d in remarked:
        console.print(f"{d['domain']} {d['mac']} dscp ({d['was']}): {d['status']}", markup=False, highlight=False)
    console.print(f"{len(done)} tc-backend policies re-applied, {len(remarked)} marks re-set", markup=False,
                  highlight=False)  # fmt: skip
    return code
