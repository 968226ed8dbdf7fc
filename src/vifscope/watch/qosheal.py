"""``watch --heal`` for vifscope's own QoS: tc-backend rates, DSCP marks and ifb devices.

When a vif's tap appears -- a domain start or restart, a hot-plug, a tap re-created with a new
ifindex -- the vifs with a policy in their domain's metadata are judged on a fresh tc read and
those not in force rebuilt (actions/qosreapply.py), and a declared DSCP mark missing from (or
different in) nft's vifscope_qos table is set again (actions/qosdscp.py). When a tap goes away
(the domain stopped, the vif was detached, the tap re-created) the ifb device vifscope made for
it is deleted, and so is its chain in vifscope_qos: on recent kernels (6.18 measured) a netdev
chain outlives its device and would mark the next device given that name.

A tap re-created on the right bridge is ``bound`` before and after, and a fast re-creation falls
between two link dumps: so the trigger is the link's ifindex, compared across the table update,
not the transitions the user sees.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosdscp import Argv, heal_mark, remark
from vifscope.actions.qosreapply import due, reapply_one, release_ifb
from vifscope.bind.qos import judge
from vifscope.model import DeclaredVif, HostSnapshot, VifBinding
from vifscope.model.qosdscp import DscpMark
from vifscope.model.qospolicy import IFB_PREFIX
from vifscope.sources.cmd import CommandError
from vifscope.sources.kernel.nftdscp import NftUnavailable, read_dscp_marks, run_argv
from vifscope.sources.kernel.tcshaping import read_tc_shaping
from vifscope.sources.qosset import link_exists
from vifscope.watch.state import Transition

Shown = Callable[[str, str], bool]


@dataclass(frozen=True)
class QosKernel:
    """What the QoS heal reads and runs (a test points them at its own namespace's tools)."""

    read_marks: Callable[[], dict[str, DscpMark]] = read_dscp_marks
    run: Callable[[Argv], str | None] = run_argv
    exists: Callable[[str], bool] = link_exists


@dataclass(frozen=True)
class TapChanges:
    """Across one table update: the vifs whose tap went away or was re-created (as they were:
    their metadata names what vifscope made), and the taps that appeared (or were re-created)."""

    gone: tuple[VifBinding, ...] = ()
    arrived: frozenset[str] = frozenset()


def _ifindex(b: VifBinding | None) -> int | None:
    return b.link.ifindex if b is not None and b.link is not None else None


def tap_changes(
    before: Mapping[Any, VifBinding], after: Mapping[Any, VifBinding], moved: Iterable[Transition] = ()
) -> TapChanges:
    """Compare each vif's link ifindex before and after (pure). A transition of a vif with a
    tc-backend policy (its binding changed) also asks for its rates to be judged again."""
    gone = tuple(b for k, b in before.items() if b.link is not None and _ifindex(after.get(k)) != b.link.ifindex)
    arrived = {
        b.vif.target for k, b in after.items()
        if b.link is not None and b.vif.target and _ifindex(before.get(k)) != b.link.ifindex
    }  # fmt: skip
    arrived |= {t.new.vif.target for t in moved if t.new and t.new.link and t.new.vif.qos_policy and t.new.vif.target}
    return TapChanges(gone, frozenset(arrived))


def _who(v: DeclaredVif) -> dict[str, Any]:
    return {"domain": v.domain, "mac": v.mac, "target": v.target}


def stale_ifb(v: DeclaredVif, snap: HostSnapshot) -> str | None:
    """The ifb vifscope made for ``v`` when the tap it served (``vsq-<ifindex>``) is gone."""
    made = v.qos_policy.created if v.qos_policy else None
    ifb = made.ifb if made else None
    if ifb is None or not ifb.startswith(IFB_PREFIX):
        return None
    suffix = ifb.removeprefix(IFB_PREFIX)
    alive = {link.ifindex for link in snap.links}
    return ifb if suffix.isdecimal() and int(suffix) not in alive else None


def _marked_taps(snap: HostSnapshot) -> frozenset[str]:
    """Taps of running vifs that declare a mark: their chain stays (the mark heal judges it)."""
    return frozenset(
        v.target for v in snap.vifs
        if v.dscp_mark is not None and v.domain_state.has_taps and v.target and v.target in snap.links_by_name
    )  # fmt: skip


def _marks(kernel: QosKernel) -> dict[str, DscpMark] | str:
    try:
        return kernel.read_marks()
    except NftUnavailable as exc:
        return str(exc)


def release(gone: tuple[VifBinding, ...], snap: HostSnapshot, audit: AuditLog, *, dry_run: bool,
            kernel: QosKernel) -> list[dict[str, Any]]:  # fmt: skip
    """``qos-release`` documents: the ifb devices and mark chains of taps that went away."""
    docs: list[dict[str, Any]] = []
    keep = _marked_taps(snap)
    marks: dict[str, DscpMark] | str | None = None
    for b in gone:
        v = b.vif
        ifb = stale_ifb(v, snap)
        if ifb is not None and kernel.exists(ifb):
            doc = {"event": "qos-release", "object": "ifb", **_who(v), "device": ifb}
            argv = shlex.join(("ip", "link", "del", "dev", ifb))
            done = {"status": "dry-run", "commands": [argv]} if dry_run else release_ifb(
                ifb, (v.domain, v.mac or ""), audit, kernel.run, kernel.exists)  # fmt: skip
            docs.append(doc | done)
        if not v.target or v.target in keep:
            continue
        marks = _marks(kernel) if marks is None else marks
        if isinstance(marks, str) or v.target not in marks:
            continue  # nft unreadable: doctor's qos.mark_stale reports what is left
        docs.append(_unmark(v, marks[v.target], audit, dry_run, kernel))
        marks = None  # read again: the table may be gone with its last chain
    return docs


def _unmark(v: DeclaredVif, mark: DscpMark, audit: AuditLog, dry_run: bool, kernel: QosKernel) -> dict[str, Any]:
    doc = {"event": "qos-release", "object": "mark", **_who(v), "chain": mark.chain}
    if dry_run:
        return doc | {"status": "dry-run"}
    out = heal_mark(v.target or "", None, (v.domain, v.mac or ""), audit, kernel.read_marks, kernel.run)
    status = "removed" if out.status == "cleared" else out.status
    return doc | {"status": status, "commands": [shlex.join(c) for c in out.commands], "error": out.error}


def mark_heal(snap: HostSnapshot, names: frozenset[str], shown: Shown, audit: AuditLog, *, dry_run: bool,
              kernel: QosKernel) -> list[dict[str, Any]]:  # fmt: skip
    """``qos-mark-heal`` documents: declared marks missing or drifted on the taps ``names``."""
    vifs = [
        v for v in snap.vifs
        if v.target in names and v.dscp_mark is not None and v.domain_state.has_taps
        and v.target in snap.links_by_name and shown(v.domain, v.domain_uuid)
    ]  # fmt: skip
    if not vifs:
        return []
    try:
        docs = remark(vifs, audit, dry_run=dry_run, read=kernel.read_marks, run=kernel.run)
    except NftUnavailable as exc:
        return [{"event": "qos-mark-heal", "status": "unavailable", "error": str(exc)}]
    return [{"event": "qos-mark-heal", **d} for d in docs]


def qos_heal(
    snap: HostSnapshot, names: frozenset[str], shown: Shown, audit: AuditLog, *, dry_run: bool
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


def qos_after_update(
    changes: TapChanges, snap: HostSnapshot, shown: Shown, audit: AuditLog, dry_run: bool,
    kernel: QosKernel | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Everything QoS asks of one table update: release first (a re-created tap's old ifb and
    chain), then rates and marks on the taps that appeared."""
    if "netlink" in snap.failed_sources:
        return []  # no link dump: every tap looks gone; judge again once links are read
    k = kernel or QosKernel()
    gone = tuple(b for b in changes.gone if shown(b.vif.domain, b.vif.domain_uuid))
    docs = release(gone, snap, audit, dry_run=dry_run, kernel=k)
    docs += qos_heal(snap, changes.arrived, shown, audit, dry_run=dry_run)
    return docs + mark_heal(snap, changes.arrived, shown, audit, dry_run=dry_run, kernel=k)
