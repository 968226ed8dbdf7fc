"""Guest NICs declared in an apply file (``domains:``), planned as ``virsh attach-device`` /
``update-device`` / ``detach-device`` of an ``<interface>`` built as ``vifscope attach``
builds it. Pure, apart from ``read_host`` (the host plus each named vif's binding verdict).

A NIC is matched by MAC. Scope follows virsh: the running guest (``--live``) if it runs,
its persistent definition (``--config``) if it has one; both when both. A declared NIC
that is there but whose verdict is not ``bound`` is refused (apply plugs; ``doctor --fix``
repairs), and verification wants every declared live NIC ``bound``.
"""

from __future__ import annotations

from collections.abc import Sequence

from vifscope.actions.model import WriteFile
from vifscope.actions.vifplan import NicKind, NicRequest, interface_xml
from vifscope.bind.join import bind
from vifscope.model import Command
from vifscope.model.desired import DomainSpec, GuestState, HostState, VifSpec, VifState
from vifscope.sources.hoststate import read_with_snapshot

Step = Command | WriteFile
Planned = tuple[tuple[str, ...], tuple[Step, ...]]


class VifRefused(Exception):
    """A declared NIC apply cannot converge safely (one line)."""


def read_host(uri: str, domains: Sequence[str] = (), *, all_guests: bool = False) -> HostState:
    """The host as apply plans against it, guests' live NICs carrying their verdicts."""
    state, snap = read_with_snapshot(uri, domains, all_guests=all_guests)
    verdicts = {(b.vif.domain, (b.vif.mac or "").lower()): b.status.value for b in bind(snap)}
    guests = tuple(
        GuestState(
            g.name,
            g.running,
            g.persistent,
            tuple(VifState(v.mac, v.kind, v.source, v.model, verdicts.get((g.name, v.mac))) for v in g.live),
            g.config,
        )
        for g in state.guests
    )
    return HostState(
        state.uri, state.bridges, state.networks, state.link_masters, state.ovs_members, state.ovs_available, guests
    )


def _xml(plug: VifState | VifSpec, mac: str, model: str | None) -> str:
    kind = NicKind(plug.kind.value if plug.kind else "network")
    return interface_xml(NicRequest(kind, plug.source or "", model=model or "virtio"), mac)


def _scope(in_live: bool, in_config: bool) -> tuple[str, ...]:
    return (*(("--live",) if in_live else ()), *(("--config",) if in_config else ()))


def _find(vifs: Sequence[VifState], mac: str) -> VifState | None:
    return next((v for v in vifs if v.mac == mac), None)


def _same(found: VifState | None, spec: VifSpec) -> bool:
    return found is not None and found.kind is spec.kind and found.source == spec.source


def _label(found: VifState | None) -> str:
    return f"{found.kind.value if found.kind else 'other'} {found.source or '-'}" if found else "none"


def plan_vif(guest: GuestState, spec: VifSpec, uri: str, xml_dir: str) -> Planned:
    """(what, steps) for one declared NIC; empty when it is as declared."""
    live = _find(guest.live, spec.mac) if guest.running else None
    config = _find(guest.config, spec.mac) if guest.persistent else None
    path = f"{xml_dir}/{guest.name}-{spec.mac.replace(':', '')}.xml"
    virsh = ("virsh", "-c", uri)
    if not spec.present:
        found = live or config
        if found is None:
            return (), ()
        if found.kind is None:
            raise VifRefused(f"domain {guest.name}: NIC {spec.mac} is of a type apply does not change")
        scope = _scope(live is not None, config is not None)
        return (f"unplug ({_label(found)})",), (
            WriteFile(path, _xml(found, spec.mac, found.model)),
            Command((*virsh, "detach-device", guest.name, path, *scope)),
        )
    for where, found in (("live", live), ("persistent", config)):
        if found is not None and found.kind is None:
            raise VifRefused(f"domain {guest.name}: NIC {spec.mac} ({where}) is of a type apply does not change")
    want_live, want_config = guest.running and not _same(live, spec), guest.persistent and not _same(config, spec)
    if not want_live and not want_config:
        if live is not None and live.status not in (None, "bound"):
            raise VifRefused(f"domain {guest.name}: NIC {spec.mac} is {live.status}, not bound: see 'vifscope doctor'")
        return (), ()
    xml = _xml(spec, spec.mac, spec.model)
    steps: list[Step] = [WriteFile(path, xml)]
    attach = _scope(want_live and live is None, want_config and config is None)
    update = _scope(want_live and live is not None, want_config and config is not None)
    if attach:
        steps.append(Command((*virsh, "attach-device", guest.name, path, *attach)))
    if update:
        steps.append(Command((*virsh, "update-device", guest.name, path, *update)))
    was = _label(live if guest.running else config)
    verb = "plug" if attach and not update else "move"
    return (f"{verb} {was} → {_label(VifState(spec.mac, spec.kind, spec.source))}",), tuple(steps)


def guest_of(spec: DomainSpec, state: HostState) -> GuestState:
    guest = state.guest(spec.name)
    if guest is None:
        raise VifRefused(f"domain {spec.name} is not defined (apply plugs NICs into existing guests)")
    return guest
