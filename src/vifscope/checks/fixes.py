"""Exact fix commands shared by several checks (one place, so doctor and --fix agree)."""

from __future__ import annotations

from vifscope.model import VifBinding


def ovs_add_port(b: VifBinding, bridge: str | None = None) -> str:
    """The ``ovs-vsctl add-port`` libvirt itself runs, with the external_ids it sets."""
    tap, v = b.vif.target, b.vif
    ids = [
        f"external-ids:attached-mac={v.mac}",
        f"external-ids:vm-id={v.domain_uuid}",
        "external-ids:iface-status=active",
    ]
    if v.interface_id:
        ids.insert(0, f"external-ids:iface-id={v.interface_id}")
    return f"ovs-vsctl --may-exist add-port {bridge or b.expect.bridge} {tap} -- set Interface {tap} {' '.join(ids)}"


def sysctl_fix(key: str, value: int | str) -> str:
    """Set now and keep across reboots (one file per key, so fixes never overwrite each other)."""
    return f"sysctl -w {key}={value} && echo '{key} = {value}' > /etc/sysctl.d/60-vifscope-{key}.conf"


def attach_fix(b: VifBinding) -> str:
    """Plug a detached tap where it is declared."""
    if b.expect.attach == "ovs-bridge":
        return ovs_add_port(b)
    return f"ip link set {b.vif.target} master {b.expect.bridge}"


def replug_fix(b: VifBinding) -> str:
    """Unplug and plug the NIC again (IFACE.xml: its <interface> element from virsh dumpxml)."""
    dom = b.vif.domain
    return (
        f"virsh detach-interface {dom} {b.vif.type} --mac {b.vif.mac} --live && "
        f"virsh attach-device {dom} IFACE.xml --live  # IFACE.xml: the <interface> from virsh dumpxml {dom}"
    )


def readd_fix(b: VifBinding) -> str:
    """Move a misbound vif: unplug from where it is, plug where declared."""
    tap = b.vif.target
    if b.expect.attach == "macvtap":
        return (
            f"re-plug the NIC: virsh detach-interface {b.vif.domain} {b.vif.type} --mac {b.vif.mac} --live; "
            f"virsh attach-device {b.vif.domain} IFACE.xml --live"
        )
    actual = b.actual_bridge or ""
    unplug = (
        f"ovs-vsctl del-port {actual.removeprefix('ovs:')} {tap}"
        if actual.startswith("ovs:")
        else f"ip link set {tap} nomaster"
    )
    return f"{unplug} && {attach_fix(b)}"
