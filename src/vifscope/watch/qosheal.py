"""``watch --heal`` for vifscope's tc-backend QoS: when link events name a vif's tap (a domain
restart or a hot-plug re-created it), the vifs with a policy in their domain's metadata are
judged on a fresh tc read, and those not in force are rebuilt (actions/qosreapply.py). A tap
re-created on the right bridge is ``bound``, so the binding heal never sees it: QoS needs this
trigger of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosreapply import due, reapply_one
from vifscope.bind.qos import judge
from vifscope.model import HostSnapshot
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.tcshaping import read_tc_shaping


def qos_heal(
    snap: HostSnapshot, names: frozenset[str], shown: Callable[[str, str], bool], audit: AuditLog, *, dry_run: bool
) -> list[dict[str, Any]]:
    """``qos-heal`` event documents for the policy vifs whose tap is among ``names``."""
    vifs = tuple(
        v for v in snap.vifs
        if v.target in names and v.qos_policy is not None and v.domain_state.has_taps and shown(v.domain, v.domain_uuid)
    )  # fmt: skip
    if not vifs:
        return []
    try:
        tc = read_tc_shaping(frozenset(v.target for v in vifs if v.target))
    except CommandError as exc:
        return [{"event": "qos-heal", "status": "unavailable", "error": str(exc)}]
    todo = due(judge(dataclasses.replace(snap, vifs=vifs), tc, {}))
    if dry_run:
        return [{"event": "qos-heal", "domain": q.domain, "mac": q.mac, "was": q.verdict.value, "status": "dry-run"}
                for q in todo]  # fmt: skip
    return [{"event": "qos-heal", **reapply_one(snap.uri, q, audit)} for q in todo]
