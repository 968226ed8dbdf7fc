"""A declared NIC's ``qos:`` in an apply file, planned and carried out as ``vifscope qos set``
(actions/qosset.py) does it: the same commands, the same refusals, the same fresh read,
verification and rollback of its own. Pure, apart from ``run_qos`` (runs it) and ``qos_state``
/ ``with_qos`` (read the NICs' QoS for apply to plan from).

A QoS change is planned when the file's rates or backend differ from what the NIC declares
now (vifscope's tc metadata, or libvirt's live ``<bandwidth>``), or when they are the same but
not in force (verdict ``missing``, ``drift``, ``partial``...). ``qos: none`` clears what the NIC
declares; no ``qos:`` leaves it alone. A NIC this apply plugs has no tap yet: its step shows the
``qos set`` it runs, whose commands are computed once the tap exists.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosplan import Refusal
from vifscope.actions.qosset import SetRequest, missing_in_kernel, plan_set_libvirt, plan_set_tc, set_libvirt, set_tc
from vifscope.actions.runner import StepFailed
from vifscope.bind.qos import judge_vif
from vifscope.checks.qos import tune_value
from vifscope.model import Command, DeclaredVif, HostSnapshot
from vifscope.model.desired import GuestState, QosSpec, QosState, VifKind, VifSpec, VifState
from vifscope.model.host import Shaping
from vifscope.model.qos import Bandwidth, BandwidthRate
from vifscope.sources.kernel.kconfig import read_shaping
from vifscope.sources.qosset import SiteUnavailable, VifRead, read_shaping_of, read_vif


class QosRefused(Exception):
    """A declared QoS apply cannot set (one line)."""


@dataclass(frozen=True)
class QosSet:
    """Set one NIC's rates through ``qos set``'s own path. ``commands``: what it runs on the
    NIC as planned (empty: the NIC is plugged by this apply, its tap is not there yet)."""

    request: SetRequest
    backend: str
    commands: tuple[Command, ...]

    def lines(self) -> tuple[str, ...]:
        if self.commands:
            return tuple(c.text() for c in self.commands)
        return (f"{shlex.join(self.equivalent())}  # its commands once the plug made the tap",)

    def text(self) -> str:
        return "; ".join(self.lines())

    def equivalent(self) -> tuple[str, ...]:
        """The ``vifscope qos set`` command line that does the same."""
        req = self.request
        if req.clear:
            rates: tuple[str, ...] = ("--clear",)
        else:
            rates = ("--inbound", tune_value(req.inbound), "--outbound", tune_value(req.outbound))
        head = ("vifscope", "-c", req.uri, "qos", "set", req.domain, "--mac", req.mac)
        return (*head, *rates, "--backend", self.backend)


def rate_text(rate: BandwidthRate | None) -> str:
    if rate is None:
        return "-"
    extra = "".join(f" {name} {v}" for name, v in (("peak", rate.peak), ("burst", rate.burst)) if v is not None)
    return f"{rate.average}{extra}" if extra else str(rate.average)


def _read(guest: GuestState, have: QosState, mac: str) -> VifRead:
    if have.site is None:
        raise QosRefused(f"domain {guest.name}: NIC {mac}: its QoS could not be read: {have.error or 'not read'}")
    policies = {p.mac: p for p in have.policies}
    return VifRead(have.site, have.bandwidth, policies, have.vif_type, guest.running)


def _commands(
    guest: GuestState, have: QosState, req: SetRequest, backend: str, shaping: Shaping | None
) -> tuple[Command, ...]:
    read = _read(guest, have, req.mac)
    planned = plan_set_tc(req, read) if backend == "tc" else plan_set_libvirt(req, read, shaping)
    if isinstance(planned, Refusal):
        hint = planned.hint.replace("--backend ", "backend: ")  # the file's words, not the CLI's
        raise QosRefused(f"domain {guest.name}: NIC {req.mac}: qos (backend {backend}): {planned.message}; {hint}")
    return planned


def _what(have: QosState, want: QosSpec, backend: str) -> tuple[str, ...]:
    if want.clear:
        return (f"qos ({backend}) clear: inbound {rate_text(have.inbound)}, outbound {rate_text(have.outbound)}",)
    what = [
        f"qos ({backend}) {name} {rate_text(now)} → {rate_text(new)}"
        for name, now, new in (("inbound", have.inbound, want.inbound), ("outbound", have.outbound, want.outbound))
        if now != new
    ]
    return tuple(what) or (f"qos ({backend}) is {have.verdict}: set it again",)


def _backend(guest: GuestState, spec: VifSpec, want: QosSpec, have: QosState) -> str | None:
    """Who sets the change (None: none needed)."""
    if want.clear:
        return have.backend
    if have.backend not in (None, want.backend):
        raise QosRefused(
            f"domain {guest.name}: NIC {spec.mac}: its rates are set by backend {have.backend}, the file says "
            f"{want.backend}; apply qos: none first (one backend at a time)"
        )
    same = (have.backend, have.inbound, have.outbound) == (want.backend, want.inbound, want.outbound)
    return None if same and have.verdict == "enforced" else want.backend


def _request(guest: GuestState, mac: str, want: QosSpec, uri: str) -> SetRequest:
    return SetRequest(uri, guest.name, mac, want.inbound, want.outbound, True, True, want.clear, False, False)


def _deferred(guest: GuestState, spec: VifSpec, want: QosSpec, uri: str, shaping: Shaping | None) -> QosSet | None:
    """The QoS of a NIC this apply plugs (no tap yet); None: nothing to set."""
    if want.clear:
        return None
    lacking = missing_in_kernel(Bandwidth(want.inbound, want.outbound), shaping) if want.backend == "libvirt" else ()
    if lacking:
        raise QosRefused(
            f"domain {guest.name}: NIC {spec.mac}: qos (backend libvirt): this kernel has no {' or '.join(lacking)}: "
            "libvirt cannot enforce <bandwidth> here; use backend: tc"
        )
    return QosSet(_request(guest, spec.mac, want, uri), want.backend, ())


def plan_qos(
    guest: GuestState, spec: VifSpec, uri: str, shaping: Shaping | None
) -> tuple[tuple[str, ...], tuple[QosSet, ...]]:
    """(what, steps) for one declared NIC's ``qos:``; empty when it holds (or is not declared)."""
    want = spec.qos
    if want is None or not spec.present:
        return (), ()
    if not guest.running:
        raise QosRefused(f"domain {guest.name}: NIC {spec.mac}: qos is set on a running guest (start it first)")
    live = next((v for v in guest.live if v.mac == spec.mac), None)
    if VifKind.OVS in (spec.kind, live.kind if live else None):
        raise QosRefused(f"domain {guest.name}: NIC {spec.mac}: qos on an Open vSwitch port is not applied (yet)")
    if live is None:
        step = _deferred(guest, spec, want, uri, shaping)
        return ((f"qos ({want.backend}) once plugged",), (step,)) if step else ((), ())
    have = live.qos or QosState(None)
    backend = _backend(guest, spec, want, have)
    if backend is None:
        return (), ()
    req = _request(guest, spec.mac, want, uri)
    return _what(have, want, backend), (QosSet(req, backend, _commands(guest, have, req, backend, shaping)),)


def clear_before_unplug(guest: GuestState, live: VifState | None, uri: str) -> tuple[QosSet, ...]:
    """Clear a NIC's tc-backend QoS before it is unplugged: its ifb device would outlive the
    tap, its metadata entry the NIC."""
    have = live.qos if live is not None else None
    if live is None or have is None or have.backend != "tc":
        return ()
    req = _request(guest, live.mac, QosSpec(), uri)
    return (QosSet(req, "tc", _commands(guest, have, req, "tc", None)),)


def run_qos(step: QosSet, audit: AuditLog | None) -> None:
    """Carry out one QoS step as ``qos set`` does (it verifies and rolls itself back)."""
    req = step.request
    try:
        if step.backend == "tc":
            out = set_tc(req, audit or AuditLog())
        else:
            out = set_libvirt(req, audit or AuditLog(), read_shaping())
    except SiteUnavailable as exc:
        raise StepFailed(f"qos set {req.domain} {req.mac}: {exc}") from exc
    if isinstance(out, Refusal):
        raise StepFailed(f"qos set {req.domain} {req.mac}: {out.message}")
    if not out.ok:
        raise StepFailed(f"qos set {req.domain} {req.mac}: {out.status}: {out.error}")


def declared_qos(vif: DeclaredVif) -> QosState:
    """Who declares a NIC's rates and what, as the snapshot has them (no verdict, no site:
    what ``export`` writes)."""
    if vif.bandwidth is not None:
        return QosState("libvirt", vif.bandwidth.inbound, vif.bandwidth.outbound, "unknown", vif_type=vif.type)
    if vif.qos_policy is not None:
        return QosState("tc", vif.qos_policy.inbound, vif.qos_policy.outbound, "unknown", vif_type=vif.type)
    return QosState(None, vif_type=vif.type)


def qos_state(uri: str, vif: DeclaredVif, snap: HostSnapshot) -> QosState:
    """A running guest's NIC's QoS: who declares what, the verdict of a fresh tc read, and the
    site ``qos set`` plans from. Raises SiteUnavailable."""
    mac = (vif.mac or "").lower()
    read = read_vif(uri, vif.domain, mac)
    policy = read.policies.get(mac)
    made = policy.created if policy else None
    _qd, tc = read_shaping_of(frozenset(n for n in (vif.target, made.ifb if made else None) if n))
    judged = judge_vif(vif, snap, tc, {}, None, policy)
    if policy is not None and read.bandwidth is None:
        backend: str | None = "tc"
        inbound, outbound = policy.inbound, policy.outbound
    elif read.bandwidth is not None:
        backend, inbound, outbound = "libvirt", read.bandwidth.inbound, read.bandwidth.outbound
    else:
        backend, inbound, outbound = None, None, None
    policies = tuple(read.policies.values())
    return QosState(backend, inbound, outbound, judged.verdict.value, read.site, policies, read.type)


def with_qos(uri: str, guest: GuestState, snap: HostSnapshot, *, fresh: bool) -> GuestState:
    """A running ``guest`` with its live NICs' QoS: read afresh with verdict and site
    (``fresh``: what apply plans from), or as the snapshot declares it (export). A NIC whose
    QoS cannot be read afresh keeps what the snapshot declares and why (``error``)."""
    vifs = {(v.mac or "").lower(): v for v in snap.vifs if v.domain == guest.name and v.target}
    out = []
    for nic in guest.live:
        vif = vifs.get(nic.mac)
        if vif is not None:
            try:
                nic = replace(nic, qos=qos_state(uri, vif, snap) if fresh else declared_qos(vif))
            except SiteUnavailable as exc:  # damaged metadata, a tap gone: refused if its QoS is to change
                nic = replace(nic, qos=replace(declared_qos(vif), error=str(exc)))
        out.append(nic)
    return replace(guest, live=tuple(out))
