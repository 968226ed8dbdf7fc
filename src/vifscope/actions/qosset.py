"""``qos set`` for one vif through either backend: read → plan (or refuse) → carry out
(actions/qosapply.py: apply, fresh read, verify, roll back).

``libvirt``: ``virsh domiftune`` (setInterfaceParameters), refused up front when the kernel
lacks what libvirt's layout needs (sch_sfq for inbound, act_police for outbound: libvirt's
command would fail half-way and leave an ingress qdisc behind). ``tc``: vifscope's own htb
(+ ifb) layout (actions/qosplan.py) and the policy in the domain's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosapply import Attempt, Judged, SetOutcome, carry_out, new_log
from vifscope.actions.qosplan import TC_HINT, Refusal, TcPlan, merge, plan_tc
from vifscope.bind.qos import combine, direction, egress, ingress, judge_policy
from vifscope.checks.commands import virsh
from vifscope.checks.qos import tune_value
from vifscope.model import Command
from vifscope.model.host import Shaping
from vifscope.model.qos import Bandwidth, BandwidthRate, DirectionQos, Enforced, QosVerdict
from vifscope.model.qospolicy import QOS_KEY, QOS_NS, VifPolicy
from vifscope.sources.libvirt.qosmeta import render_policies
from vifscope.sources.qosset import VifRead, link_exists, read_config_policies, read_shaping_of, read_vif

V = QosVerdict


@dataclass(frozen=True)
class SetRequest:
    uri: str
    domain: str
    mac: str
    inbound: BandwidthRate | None
    outbound: BandwidthRate | None
    set_in: bool
    set_out: bool
    clear: bool
    live: bool
    config: bool


def scope(req: SetRequest, running: bool) -> tuple[str, ...]:
    """``--live`` / ``--config`` as asked; neither: the running definition and the persistent one."""
    live = req.live or (not req.config and running)
    config = req.config or not req.live
    return (*(("--live",) if live else ()), *(("--config",) if config else ()))


def metadata_command(req: SetRequest, policies: dict[str, VifPolicy], flags: tuple[str, ...]) -> Command:
    """``virsh metadata`` writing the domain's whole vifscope element (or removing it: no vif left)."""
    change = ("--key", QOS_KEY, "--set", render_policies(policies)) if policies else ("--remove",)
    return virsh(req.uri, "metadata", req.domain, QOS_NS, options=(*change, *flags))


def _verify_tc(dev: str, ifb: str | None, policy: VifPolicy | None) -> Judged:
    _qd, tc = read_shaping_of(frozenset(n for n in (dev, ifb) if n))
    return Judged(*judge_policy(policy, dev, tc))


def _accept(policy: VifPolicy | Bandwidth | None) -> frozenset[QosVerdict]:
    return frozenset({V.NONE}) if policy is None else frozenset({V.ENFORCED})


def _with_created(
    policies: dict[str, VifPolicy], mac: str, policy: VifPolicy | None, plan: TcPlan
) -> dict[str, VifPolicy]:
    out = {k: v for k, v in policies.items() if k != mac}
    if policy is not None:
        out[mac] = replace(policy, created=plan.created)
    return out


def _tc_attempt(req: SetRequest, read: VifRead, current: VifPolicy | None, target: VifPolicy | None,
                flags: tuple[str, ...]) -> Attempt | Refusal:  # fmt: skip
    plan = plan_tc(read.site, current, target)
    if isinstance(plan, Refusal):
        return plan
    meta = metadata_command(req, _with_created(read.policies, req.mac, target, plan), flags)
    ifb = plan.created.ifb if plan.created else None
    return Attempt((*plan.commands, meta), lambda: _verify_tc(read.site.dev, ifb, target), _accept(target))


def _tc_target(req: SetRequest, read: VifRead) -> tuple[VifPolicy | None, VifPolicy | None]:
    current = read.policies.get(req.mac)
    target = merge(current, req.mac, req.inbound, req.outbound, set_in=req.set_in, set_out=req.set_out, clear=req.clear)
    return current, target


def _tc_plan(req: SetRequest, read: VifRead) -> Attempt | Refusal:
    if not read.running:
        return Refusal(f"{req.domain} is not running: the tc backend shapes a running domain's tap", "start it first")
    current, target = _tc_target(req, read)
    return _tc_attempt(req, read, current, target, scope(req, read.running))


def plan_set_tc(req: SetRequest, read: VifRead) -> tuple[Command, ...] | Refusal:
    """The commands ``qos set --backend tc`` runs for ``req`` on the vif as ``read`` (pure)."""
    attempt = _tc_plan(req, read)
    return attempt if isinstance(attempt, Refusal) else attempt.commands


def set_tc(req: SetRequest, audit: AuditLog) -> SetOutcome | Refusal:
    read = read_vif(req.uri, req.domain, req.mac)
    if not read.running and req.clear:
        return clear_stopped(req, audit)
    attempt = _tc_plan(req, read)
    if isinstance(attempt, Refusal):
        return attempt
    current, target = _tc_target(req, read)
    flags = scope(req, read.running)
    audit.check_writable()
    made = plan_tc(read.site, current, target)

    def rollback() -> Attempt:
        """From what this apply made (read afresh: it may have stopped half-way) back to ``current``."""
        fresh = read_vif(req.uri, req.domain, req.mac)
        tried = VifPolicy(req.mac, created=made.created if isinstance(made, TcPlan) else None)
        back = _tc_attempt(req, replace(fresh, policies=read.policies), tried, current, flags)
        if isinstance(back, Refusal):
            raise RuntimeError(back.message)
        return back

    return carry_out(attempt, rollback, new_log(audit, "qos-tc", req.domain, req.mac))


def _stopped_verify(req: SetRequest, ifb: str | None) -> Judged:
    """A domain that is not running after ``--clear``: nothing left is verdict ``none``; a
    lingering ifb is outbound ``undeclared``, a policy still in the definition ``inactive``."""
    left = ifb is not None and link_exists(ifb)
    outbound = DirectionQos(None, Enforced("ifb") if left else None, V.UNDECLARED if left else V.NONE)
    kept = req.mac in read_config_policies(req.uri, req.domain)
    verdict = V.UNDECLARED if left else (V.INACTIVE if kept else V.NONE)
    return Judged(DirectionQos(None, None, V.INACTIVE if kept else V.NONE), outbound, verdict)


def clear_stopped(req: SetRequest, audit: AuditLog) -> SetOutcome | Refusal:
    """``--clear`` on a domain that is not running: no tap is left to unshape, but the ifb a
    destroyed domain left behind (named in the persistent policy's ``created``) is deleted and
    the policy removed from the persistent definition. A rollback restores the metadata only."""
    if req.live:
        return Refusal(f"{req.domain} is not running: it has no live definition to clear", "leave out --live")
    policies = read_config_policies(req.uri, req.domain)
    made = policies[req.mac].created if req.mac in policies else None
    ifb = made.ifb if made else None
    gone = (Command(("ip", "link", "del", "dev", ifb)),) if ifb and link_exists(ifb) else ()
    rest = {k: v for k, v in policies.items() if k != req.mac}
    meta = (metadata_command(req, rest, ("--config",)),) if req.mac in policies else ()
    audit.check_writable()
    apply = Attempt((*gone, *meta), lambda: _stopped_verify(req, ifb), frozenset({V.NONE}))

    def rollback() -> Attempt:
        back = (metadata_command(req, policies, ("--config",)),) if meta else ()
        return Attempt(back, lambda: _stopped_verify(req, ifb), frozenset(V))

    return carry_out(apply, rollback, new_log(audit, "qos-tc", req.domain, req.mac))


def missing_in_kernel(bw: Bandwidth | None, shaping: Shaping | None) -> tuple[str, ...]:
    """What libvirt's layout for ``bw`` needs and this kernel lacks (unknown kernel: nothing)."""
    if bw is None or shaping is None:
        return ()
    need_in = bw.inbound is not None and bw.inbound.shapes and not shaping.sfq
    need_out = bw.outbound is not None and bw.outbound.shapes and not shaping.police
    return (*(("sch_sfq",) if need_in else ()), *(("act_police",) if need_out else ()))


def _libvirt_verify(req: SetRequest) -> Judged:
    read = read_vif(req.uri, req.domain, req.mac)
    bw = read.bandwidth or Bandwidth()
    dev = read.site.dev
    _qd, tc = read_shaping_of(frozenset({dev}))
    got_in, got_out = egress(dev, tc), ingress(dev, tc)
    if read.type == "direct":  # a macvtap: the host's view is the guest's
        got_in, got_out = got_out, got_in
    inbound, outbound = direction(bw.inbound, got_in), direction(bw.outbound, got_out)
    return Judged(inbound, outbound, combine(inbound.verdict, outbound.verdict))


def _tune(req: SetRequest, bw: Bandwidth | None, flags: tuple[str, ...]) -> Command:
    opts = ("--inbound", tune_value(bw.inbound if bw else None), "--outbound", tune_value(bw.outbound if bw else None))
    return virsh(req.uri, "domiftune", req.domain, req.mac, options=(*flags, *opts))


def _libvirt_want(req: SetRequest, read: VifRead) -> Bandwidth | None:
    now = read.bandwidth or Bandwidth()
    return None if req.clear else Bandwidth(
        req.inbound if req.set_in else now.inbound, req.outbound if req.set_out else now.outbound
    )  # fmt: skip


def plan_set_libvirt(req: SetRequest, read: VifRead, shaping: Shaping | None) -> tuple[Command, ...] | Refusal:
    """The ``virsh domiftune`` ``qos set --backend libvirt`` runs for ``req`` (pure), or why
    it refuses: a kernel without what libvirt's layout needs."""
    want = _libvirt_want(req, read)
    lacking = missing_in_kernel(want, shaping)
    if lacking:
        return Refusal(
            f"this kernel has no {' or '.join(lacking)}: libvirt cannot enforce <bandwidth> here "
            "(virsh domiftune would fail half-way)",
            TC_HINT,
        )
    return (_tune(req, want, scope(req, read.running)),)


def set_libvirt(req: SetRequest, audit: AuditLog, shaping: Shaping | None) -> SetOutcome | Refusal:
    read = read_vif(req.uri, req.domain, req.mac)
    commands = plan_set_libvirt(req, read, shaping)
    if isinstance(commands, Refusal):
        return commands
    want = _libvirt_want(req, read)
    flags = scope(req, read.running)
    audit.check_writable()
    accept = _accept(want if want and (want.inbound or want.outbound) else None)
    apply = Attempt(commands, lambda: _libvirt_verify(req), accept)

    def rollback() -> Attempt:
        return Attempt((_tune(req, read.bandwidth, flags),), lambda: _libvirt_verify(req), _accept(read.bandwidth))

    return carry_out(apply, rollback, new_log(audit, "qos-libvirt", req.domain, req.mac))
