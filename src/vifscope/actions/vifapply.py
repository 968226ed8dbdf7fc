"""Carry out an attach or a detach: take the MAC → hot-plug → fresh snapshot → verify the
new vif is ``bound`` → on failure unplug it again and give the MAC back. Every step is a line
of the shared audit log (vifscope.actions.audit: same file and fields as ``doctor --fix``;
actor ``attach`` / ``detach``; phase apply / verify / rollback; action ``mac-allocate``,
``vif-attach``, ``vif-detach``, ``mac-release``).

The libvirt calls are vifscope.sources.libvirt.devices'; the store calls arrive as the two
callables of ``MacBook`` so this module does not care which database holds the pool.
"""

from __future__ import annotations

import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vifscope.actions.audit import AuditError, AuditLog, AuditRecord
from vifscope.actions.vifplan import NicRequest, Scope, detach_xml, interface_type, interface_xml
from vifscope.bind.join import bind_one
from vifscope.model import DeclaredVif, VifBinding, VifStatus
from vifscope.model.devices import DomainView, Removal
from vifscope.sources.libvirt.conn import LibvirtUnavailable
from vifscope.sources.libvirt.devices import DeviceError, attach_interface, detach_interface, read_domain
from vifscope.sources.snapshot import take_snapshot

VERIFY_EVERY_S = 0.3  # between the fresh snapshots of one verification
DETACH_TIMEOUT_S = 30.0


class ReleaseFailed(RuntimeError):
    """The store could not take the MAC back (it is down, or refused); the device change stands."""


@dataclass(frozen=True)
class MacBook:
    """The MAC store as an attach needs it: ``take()`` returns (MAC, pool or None, whether
    this call took it: only then does a failed attach give it back); ``release(mac)``
    (ReleaseFailed when the store cannot)."""

    take: Callable[[], tuple[str, str | None, bool]]
    release: Callable[[str], None]


@dataclass
class _Run:
    """One attach / detach: its id, and the audit lines it wrote (or could not)."""

    actor: str
    domain: str
    audit: AuditLog
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    audit_errors: list[str] = field(default_factory=list)

    def log(
        self, phase: str, action: str, result: str, mac: str | None, commands: Sequence[str], error: str | None = None
    ) -> None:
        rec = AuditRecord(
            ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
            run=self.run,
            actor=self.actor,
            phase=phase,
            action=action,
            target=self.domain,
            commands=tuple(commands),
            result=result,
            domain=self.domain,
            mac=mac,
            reason=f"vifscope {self.actor}",
            error=error,
        )
        try:
            self.audit.write(rec)
        except AuditError as exc:  # keep going: stopping half-way would be worse than a missing line
            self.audit_errors.append(str(exc))


@dataclass(frozen=True)
class Outcome:
    """``status``: attached / detached (verified), rolled-back, apply-failed, rollback-failed,
    not-removed, audit-failed (the audit log failed mid-run: an attach is undone, a detach
    kept). ``binding``: the vif as status shows it, from the verifying snapshot."""

    run: str
    status: str
    mac: str | None
    pool: str | None = None
    binding: VifBinding | None = None
    error: str | None = None
    released: bool = False
    removal: Removal | None = None
    audit_errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("attached", "detached")


def call_text(call: str, domain: str, scope: Scope, xml: str) -> str:
    """The libvirt call as the audit log records it: one argv-quoted line."""
    return shlex.join([call, domain, "|".join(scope.words()), xml])


def _observe(uri: str, dom: DomainView, mac: str, scope: Scope) -> VifBinding | None:
    """The vif with ``mac`` on a fresh snapshot: the live one, or (config only) the persistent one."""
    snap = take_snapshot(uri)
    if scope.live:
        vif = next((v for v in snap.vifs if v.domain == dom.name and (v.mac or "").lower() == mac), None)
    else:
        vif = next((v for v in read_domain(uri, dom.name).config if (v.mac or "").lower() == mac), None)
    return bind_one(vif, snap) if vif is not None else None


def _why(b: VifBinding | None, scope: Scope) -> str | None:
    if b is None:
        return "the interface is not in the domain's " + ("live" if scope.live else "persistent") + " XML"
    if scope.live and b.status is not VifStatus.BOUND:
        return f"verdict {b.status.value}: {b.detail} ({', '.join(p.value for p in b.problems)})"
    return None


def verify_attached(
    uri: str, dom: DomainView, mac: str, scope: Scope, budget: float
) -> tuple[VifBinding | None, str | None]:
    """Look again until the vif is bound (config only: present), or ``budget`` s have passed."""
    deadline = time.monotonic() + budget
    while True:
        b = _observe(uri, dom, mac, scope)
        why = _why(b, scope)
        if why is None or time.monotonic() >= deadline:
            return b, why
        time.sleep(VERIFY_EVERY_S)


def _unplug(run: _Run, uri: str, vif: DeclaredVif, scope: Scope, timeout: float) -> Removal | str:
    """Detach ``vif`` and wait for libvirt to confirm it; the Removal, or libvirt's error."""
    xml = detach_xml(vif)
    try:
        return detach_interface(
            uri, run.domain, xml, mac=vif.mac or "", alias=vif.alias, live=scope.live, config=scope.config,
            timeout=timeout,
        )  # fmt: skip
    except DeviceError as exc:
        return str(exc)


def run_attach(
    uri: str, dom: DomainView, req: NicRequest, scope: Scope, macs: MacBook, audit: AuditLog, settle: float,
    timeout: float = DETACH_TIMEOUT_S,
) -> Outcome:  # fmt: skip
    """Take a MAC, hot-plug, verify (for up to ``settle`` s), roll back on failure (waiting up
    to ``timeout`` s for the guest to let the NIC go; if it does not, the MAC is kept)."""
    run = _Run("attach", dom.name, audit)
    mac, pool, took = macs.take()
    if took:
        run.log("apply", "mac-allocate", "ok", mac, [shlex.join(["allocate", mac, "pool", pool or "-"])])
    if run.audit_errors:  # the log stopped taking lines: change nothing it cannot record
        released = _give_back(run, macs, mac, took)
        return Outcome(run.run, "audit-failed", mac, pool, None, run.audit_errors[0], released, None,
                       tuple(run.audit_errors))  # fmt: skip
    xml = interface_xml(req, mac)
    call = call_text("attachDeviceFlags", dom.name, scope, xml)
    try:
        attach_interface(uri, dom.name, xml, live=scope.live, config=scope.config)
    except DeviceError as exc:
        run.log("apply", "vif-attach", "failed", mac, [call], str(exc))
        released = _give_back(run, macs, mac, took)
        return Outcome(run.run, "apply-failed", mac, pool, None, str(exc), released, None, tuple(run.audit_errors))
    except LibvirtUnavailable as exc:  # no read-write connection: nothing plugged, the MAC goes back
        run.log("apply", "vif-attach", "failed", mac, [call], str(exc))
        _give_back(run, macs, mac, took)
        raise
    run.log("apply", "vif-attach", "ok", mac, [call])
    binding, why = verify_attached(uri, dom, mac, scope, settle)
    run.log("verify", "vif-attach", "verified" if why is None else "not-verified", mac, (), why)
    if why is None and not run.audit_errors:
        return Outcome(run.run, "attached", mac, pool, binding, None, False, None, tuple(run.audit_errors))
    # Verification failed, or the audit log lost a line of this change: undo it all.
    status, why = ("rolled-back", why) if why is not None else ("audit-failed", run.audit_errors[0])
    vif = binding.vif if binding else DeclaredVif(dom.name, dom.uuid, dom.state, 0, interface_type(req), mac)
    removal = _unplug(run, uri, vif, scope, timeout)
    undo = [call_text("detachDeviceFlags", dom.name, scope, detach_xml(vif))]
    if isinstance(removal, str) or not removal.done:
        error = removal if isinstance(removal, str) else f"device removal {removal.status.value}"
        run.log("rollback", "vif-detach", "rollback-failed", mac, undo, error)
        errors = f"{why}; rollback: {error}"
        return Outcome(run.run, "rollback-failed", mac, pool, binding, errors, False, None, tuple(run.audit_errors))
    run.log("rollback", "vif-detach", "rolled-back", mac, undo)
    released = _give_back(run, macs, mac, took)
    return Outcome(run.run, status, mac, pool, binding, why, released, removal, tuple(run.audit_errors))


def _give_back(run: _Run, macs: MacBook, mac: str, took: bool) -> bool:
    """Release the MAC this attach took (quarantined as the store does); a rollback step."""
    if not took:
        return False
    try:
        macs.release(mac)
    except ReleaseFailed as exc:  # the store went away: said in the log and the outcome
        run.log("rollback", "mac-release", "rollback-failed", mac, [shlex.join(["release", mac])], str(exc))
        return False
    run.log("rollback", "mac-release", "rolled-back", mac, [shlex.join(["release", mac])])
    return True


def still_declared(dom: DomainView, mac: str, scope: Scope) -> bool:
    """After a detach of ``scope``, does a definition it did not touch still have the MAC?"""
    rest = (*(() if scope.live else dom.live), *(() if scope.config else dom.config))
    return any((v.mac or "").lower() == mac for v in rest)


def run_detach(
    uri: str, dom: DomainView, vif: DeclaredVif, scope: Scope, release: Callable[[str], bool], audit: AuditLog,
    timeout: float,
) -> Outcome:  # fmt: skip
    """Unplug, wait for libvirt's DEVICE_REMOVED, then give the MAC back (``release``
    returns False when the store has no record of it)."""
    run = _Run("detach", dom.name, audit)
    mac = (vif.mac or "").lower()
    call = call_text("detachDeviceFlags", dom.name, scope, detach_xml(vif))
    removal = _unplug(run, uri, vif, scope, timeout)
    if isinstance(removal, str):
        run.log("apply", "vif-detach", "failed", mac, [call], removal)
        return Outcome(run.run, "apply-failed", mac, error=removal, audit_errors=tuple(run.audit_errors))
    run.log("apply", "vif-detach", "ok", mac, [call])
    if not removal.done:
        why = (
            f"libvirt reported no removal of {vif.alias or mac} ({removal.status.value} after {removal.waited_s:.1f} s)"
        )
        run.log("verify", "vif-detach", "not-verified", mac, (), why)
        return Outcome(run.run, "not-removed", mac, None, None, why, False, removal, tuple(run.audit_errors))
    run.log("verify", "vif-detach", "verified", mac, ())
    if run.audit_errors:  # the NIC is gone (undoing a guest's unplug is the bigger change): say so, keep the MAC
        return Outcome(run.run, "audit-failed", mac, None, None, run.audit_errors[0], False, removal,
                       tuple(run.audit_errors))  # fmt: skip
    released = False
    if not still_declared(dom, mac, scope):
        try:
            released = release(mac)
        except ReleaseFailed as exc:  # the device is gone; only the pool's record is behind
            run.log("apply", "mac-release", "failed", mac, [shlex.join(["release", mac])], str(exc))
            return Outcome(run.run, "detached", mac, None, None, str(exc), False, removal, tuple(run.audit_errors))
        if released:
            run.log("apply", "mac-release", "ok", mac, [shlex.join(["release", mac])])
    return Outcome(run.run, "detached", mac, None, None, None, released, removal, tuple(run.audit_errors))
