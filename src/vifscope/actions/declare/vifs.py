"""Guest NICs declared in an apply file (``domains:``), planned as ``virsh attach-device`` /
``update-device`` / ``detach-device`` of an ``<interface>`` built as ``vifscope attach``
builds it. Pure, apart from ``read_host`` (the host plus each named vif's binding verdict).

A NIC is matched by MAC. Scope follows virsh: the running guest (``--live``) if it runs,
its persistent definition (``--config``) if it has one; both when both. A declared NIC
that is there but whose verdict is not ``bound`` is refused (apply plugs; ``doctor --fix``
repairs), and verification wants every declared live NIC ``bound``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace

from vifscope.actions.declare.vifqos import QosSet, clear_before_unplug, with_qos
from vifscope.actions.model import WriteFile
from vifscope.actions.vifplan import NicKind, NicRequest, interface_element
from vifscope.bind.join import bind
from vifscope.model import Command
from vifscope.model.desired import DomainSpec, GuestState, HostState, VifSpec, VifState
from vifscope.sources.hoststate import read_with_snapshot
from vifscope.sources.kernel.kconfig import read_shaping

Step = Command | WriteFile | QosSet
Planned = tuple[tuple[str, ...], tuple[Step, ...]]


class VifRefused(Exception):
    """A declared NIC apply cannot converge safely (one line)."""


def read_host(uri: str, domains: Sequence[str] = (), *, all_guests: bool = False) -> HostState:
    """The host as apply plans against it, guests' live NICs carrying their verdicts."""
    state, snap = read_with_snapshot(uri, domains, all_guests=all_guests)
    verdicts = {(b.vif.domain, (b.vif.mac or "").lower()): b.status.value for b in bind(snap)}
    guests = tuple(
        with_qos(uri, replace(g, live=tuple(replace(v, status=verdicts.get((g.name, v.mac))) for v in g.live)),
                 snap, fresh=not all_guests)
        for g in state.guests
    )  # fmt: skip
    return replace(state, guests=guests, shaping=read_shaping())


def _xml(plug: VifState | VifSpec, mac: str, model: str | None, isolated: bool = False, nwfilter: str = "") -> str:
    """The ``<interface>`` as ``vifscope attach`` builds it, plus the port isolation and
    nwfilter (update-device replaces the whole device: what is not written is dropped)."""
    kind = NicKind(plug.kind.value if plug.kind else "network")
    iface = interface_element(NicRequest(kind, plug.source or "", model=model or "virtio"), mac)
    if isolated:
        ET.SubElement(iface, "port", isolated="yes")
    if nwfilter:
        ET.SubElement(iface, "filterref", filter=nwfilter)
    return ET.tostring(iface, encoding="unicode")


def _scope(in_live: bool, in_config: bool) -> tuple[str, ...]:
    return (*(("--live",) if in_live else ()), *(("--config",) if in_config else ()))


def _find(vifs: Sequence[VifState], mac: str) -> VifState | None:
    return next((v for v in vifs if v.mac == mac), None)


def _same(found: VifState | None, spec: VifSpec) -> bool:
    return (
        found is not None
        and found.kind is spec.kind
        and found.source == spec.source
        and spec.isolated in (None, found.isolated)
        and spec.nwfilter in (None, found.nwfilter or "")
    )


def _settings(was: VifState | None, spec: VifSpec) -> tuple[bool, str]:
    """Port isolation and nwfilter the new XML carries: the file's, else what the NIC has."""
    isolated = spec.isolated if spec.isolated is not None else bool(was and was.isolated)
    nwfilter = spec.nwfilter if spec.nwfilter is not None else ((was.nwfilter or "") if was else "")
    return isolated, nwfilter


def _label(found: VifState | None) -> str:
    return f"{found.kind.value if found.kind else 'other'} {found.source or '-'}" if found else "none"


def _unplug(
    guest: GuestState, spec: VifSpec, live: VifState | None, config: VifState | None, path: str, uri: str
) -> Planned:
    found = live or config
    if found is None:
        return (), ()
    if found.kind is None:
        raise VifRefused(f"domain {guest.name}: NIC {spec.mac} is of a type apply does not change")
    scope = _scope(live is not None, config is not None)
    qos = clear_before_unplug(guest, live, uri)
    return (f"unplug ({_label(found)})", *(("qos (tc) cleared first",) if qos else ())), (
        *qos,
        WriteFile(path, _xml(found, spec.mac, found.model, found.isolated, found.nwfilter or "")),
        Command(("virsh", "-c", uri, "detach-device", guest.name, path, *scope)),
    )


def _what(now: VifState | None, spec: VifSpec, verb: str, isolated: bool, nwfilter: str) -> tuple[str, ...]:
    what = []
    if now is None or now.kind is not spec.kind or now.source != spec.source:
        what.append(f"{verb} {_label(now)} → {_label(VifState(spec.mac, spec.kind, spec.source))}")
    if now is not None and now.isolated != isolated:
        what.append(f"isolated {'on' if isolated else 'off'}")
    if now is not None and (now.nwfilter or "") != nwfilter:
        what.append(f"nwfilter {now.nwfilter or '-'} → {nwfilter or '-'}")
    return tuple(what) or (f"{verb} into the definition that lacks it",)


def plan_vif(guest: GuestState, spec: VifSpec, uri: str, xml_dir: str) -> Planned:
    """(what, steps) for one declared NIC; empty when it is as declared."""
    live = _find(guest.live, spec.mac) if guest.running else None
    config = _find(guest.config, spec.mac) if guest.persistent else None
    path = f"{xml_dir}/{guest.name}-{spec.mac.replace(':', '')}.xml"
    if not spec.present:
        return _unplug(guest, spec, live, config, path, uri)
    for where, found in (("live", live), ("persistent", config)):
        if found is not None and found.kind is None:
            raise VifRefused(f"domain {guest.name}: NIC {spec.mac} ({where}) is of a type apply does not change")
    want_live, want_config = guest.running and not _same(live, spec), guest.persistent and not _same(config, spec)
    if not want_live and not want_config:
        if live is not None and live.status not in (None, "bound"):
            raise VifRefused(f"domain {guest.name}: NIC {spec.mac} is {live.status}, not bound: see 'vifscope doctor'")
        return (), ()
    now = live if guest.running else config
    isolated, nwfilter = _settings(now, spec)
    steps: list[Step] = [WriteFile(path, _xml(spec, spec.mac, spec.model, isolated, nwfilter))]
    attach = _scope(want_live and live is None, want_config and config is None)
    update = _scope(want_live and live is not None, want_config and config is not None)
    if attach:
        steps.append(Command(("virsh", "-c", uri, "attach-device", guest.name, path, *attach)))
    if update:
        steps.append(Command(("virsh", "-c", uri, "update-device", guest.name, path, *update)))
    return _what(now, spec, "plug" if attach and not update else "move", isolated, nwfilter), tuple(steps)


def guest_of(spec: DomainSpec, state: HostState) -> GuestState:
    guest = state.guest(spec.name)
    if guest is None:
        raise VifRefused(f"domain {spec.name} is not defined (apply plugs NICs into existing guests)")
    return guest
