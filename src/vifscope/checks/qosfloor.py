"""qos.floor_unusable: a declared ``<inbound floor=>`` libvirt cannot honour.

A floor is a guaranteed share of a virtual network's inbound (libvirt's formatdomain "Quality
of service"; networkCheckBandwidth in network/bridge_driver.c): it exists only for
``<interface type='network'>``, only when the network itself declares ``<bandwidth><inbound
average=>`` -- the total the floors are carved from -- and the floors of the vifs plugged in
must not exceed that average. Otherwise libvirt refuses to start the domain (or to plug the
vif: "Invalid use of 'floor'", "Cannot plug ... into network: ... floor"). Only libvirt's
network drivers with a bridge (forward mode nat, route, open or none) shape; floors on other
networks are refused as well.
"""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain
from vifscope.checks.commands import virsh
from vifscope.model import Finding, Fix, LibvirtNetwork, Severity, VifBinding

FLOOR_MODES = frozenset({"nat", "route", "open", "isolated"})


def _floor(b: VifBinding) -> int | None:
    bw = b.vif.bandwidth
    return bw.inbound.floor if bw is not None and bw.inbound is not None and bw.inbound.floor else None


def _plugged_floors(ctx: CheckContext, network: str) -> int:
    """The floors of the running vifs on ``network`` (what libvirt has handed out of it)."""
    return sum(_floor(b) or 0 for b in ctx.running if b.vif.type == "network" and b.vif.network == network)


def _why(ctx: CheckContext, b: VifBinding, net: LibvirtNetwork | None) -> tuple[str, Fix] | None:
    v, uri = b.vif, ctx.snap.uri
    drop = virsh(uri, "edit", v.domain)
    if v.type != "network":
        return f"floor is only for <interface type='network'>, not type='{v.type}'", Fix(
            (drop,), "remove floor= from this interface's <inbound>"
        )
    if net is None:
        return None  # network.undefined says so
    if net.mode not in FLOOR_MODES:
        return f"network {net.name} (forward mode {net.mode}) has no bridge libvirt shapes: floor is refused", Fix(
            (drop,), "remove floor= from this interface's <inbound>"
        )
    edit = virsh(uri, "net-edit", net.name)
    if net.inbound_average is None:
        need = _plugged_floors(ctx, net.name) + (0 if b in ctx.running else _floor(b) or 0)
        note = f"add <bandwidth><inbound average='{need}'/></bandwidth> (kB/s: at least the sum of the floors)"
        return f"network {net.name} declares no <bandwidth><inbound average=>, which a floor is a share of", Fix(
            (edit,), note + ", then restart the network"
        )
    total = _plugged_floors(ctx, net.name)
    if total > net.inbound_average:
        return (
            f"the floors on network {net.name} add up to {total} kB/s, "
            f"above its inbound average of {net.inbound_average} kB/s",
            Fix((edit,), f"raise <bandwidth><inbound average=> to at least {total}, or lower the floors"),
        )
    return None


def floor_unusable(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.bindings:
        floor = _floor(b)
        if floor is None:
            continue
        net = ctx.snap.networks_by_name.get(b.vif.network or "") if b.vif.type == "network" else None
        why = _why(ctx, b, net)
        if why is None:
            continue
        msg, fix = why
        ev = [("floor_kBps", floor), ("network", b.vif.network), ("network_inbound_average_kBps",
              net.inbound_average if net else None), ("domain_state", b.vif.domain_state.value)]  # fmt: skip
        yield c.on_vif(b, f"<inbound floor='{floor}'> cannot be honoured: {msg}", ev, fix)


CHECKS: tuple[Check, ...] = (
    Check(
        "qos.floor_unusable",
        "network",
        Severity.ERROR,
        "declared floor libvirt cannot honour",
        floor_unusable,
        Explain(
            "A vif declares <bandwidth><inbound floor=>, a guaranteed share of a virtual network's inbound, but it is "
            "not type='network', or its network has no <bandwidth><inbound average=> to share, or the running vifs' "
            "floors on the network exceed that average.",
            "libvirt refuses to start the domain or plug the vif ('Invalid use of floor'); the guarantee the XML "
            "promises is not there.",
            "virsh net-edit NETWORK: add <bandwidth><inbound average='TOTAL'/></bandwidth> (at least the sum of the "
            "floors) and restart the network; or remove floor= with virsh edit DOMAIN.",
            "A network edited but not restarted: its live definition (what vifscope reads) still lacks the bandwidth.",
        ),
    ),
)
