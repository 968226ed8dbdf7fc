"""Re-apply tc-backend policies that are not in force (a re-created tap, removed qdiscs): each
vif through ``qos set``'s own path (actions/qosset.py: plan → apply → fresh read → verify →
roll back; audit-logged, actor ``qos``) with the rates its metadata declares. Used by
``vifscope qos reapply`` and by ``watch --heal`` when a vif's tap reappears.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosapply import new_log
from vifscope.actions.qosplan import Refusal
from vifscope.actions.qosset import SetRequest, set_tc
from vifscope.bind.qos import POLICY_WHERE
from vifscope.model.qos import QosVerdict, VifQos
from vifscope.sources.kernel.nftdscp import run_argv
from vifscope.sources.qosset import SiteUnavailable, link_exists

REBUILD = frozenset({QosVerdict.MISSING, QosVerdict.DRIFT, QosVerdict.PARTIAL})


def due(vifs: Iterable[VifQos]) -> list[VifQos]:
    """The vifs judged against vifscope's metadata whose policy is not (fully) in force."""
    return [q for q in vifs if q.where == POLICY_WHERE and q.verdict in REBUILD and q.mac]


def reapply_one(uri: str, q: VifQos, audit: AuditLog) -> dict[str, Any]:
    """One vif's policy rebuilt; a JSON-ready answer (status: enforced, rolled-back, refused...)."""
    inbound, outbound = q.inbound.declared, q.outbound.declared
    req = SetRequest(uri, q.domain, q.mac or "", inbound, outbound, True, True, False, False, False)
    doc: dict[str, Any] = {"domain": q.domain, "mac": q.mac, "target": q.target, "was": q.verdict.value}
    try:
        out = set_tc(req, audit)
    except SiteUnavailable as exc:
        return {**doc, "status": "unavailable", "error": str(exc)}
    if isinstance(out, Refusal):
        return {**doc, "status": "refused", "error": out.message}
    return {**doc, "status": out.status, "commands": list(out.commands), "error": out.error}


def release_ifb(
    ifb: str,
    who: tuple[str, str],
    audit: AuditLog,
    run: Callable[[tuple[str, ...]], str | None] = run_argv,
    exists: Callable[[str], bool] = link_exists,
) -> dict[str, Any]:
    """Delete the ifb device vifscope made for a tap that is gone (the domain stopped, the vif
    was detached, the tap re-created), then check it is gone. Nothing to roll back: the device
    shaped only what the gone tap redirected to it. Audit-logged as ``qos-ifb``, phase release."""
    argv = ("ip", "link", "del", "dev", ifb)
    log = new_log(audit, "qos-ifb", *who)
    err = run(argv)
    still = exists(ifb)
    status = "removed" if not still else "failed"
    error = (err or "still present after ip link del") if still else None
    log("release", "ok" if status == "removed" else "failed", [shlex.join(argv)], error)
    return {"status": status, "commands": [shlex.join(argv)], "error": error}
