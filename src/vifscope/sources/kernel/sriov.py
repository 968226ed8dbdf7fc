"""SR-IOV virtual functions: where a VF sits (sysfs) and how its PF programmed it (VF table).

sysfs (Documentation/ABI/testing/sysfs-bus-pci): a VF's ``/sys/bus/pci/devices/ADDR/physfn``
links to its PF; the PF's ``virtfnN`` links point at its VFs (N is the VF index its driver
uses) and its ``net/`` directory names the PF's netdev. The VF table is the PF's
IFLA_VFINFO_LIST, as ``ip -d -j link show dev PF`` prints it in ``vfinfo_list``:
``{"vf": N, "address": MAC, "vlan_list": [{"vlan": V, "qos": Q}], "spoofchk", "link_state",
"trust"}`` (iproute2 before 4.16 printed ``"mac"`` and a bare ``"vlan"``; both are read).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vifscope.model import PciFunction, VfConfig
from vifscope.sources.cmd import run_json
from vifscope.sources.jsonshape import JsonShapeError, obj, objs, opt_int, opt_str

SYS = Path("/sys")


def _link_name(path: Path) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _vf_index(pf_dir: Path, address: str) -> int | None:
    """N of the PF's ``virtfnN`` link that points at ``address``."""
    try:
        links = [p for p in pf_dir.iterdir() if p.name.startswith("virtfn") and p.name[6:].isdigit()]
    except OSError:
        return None
    return next((int(p.name[6:]) for p in links if _link_name(p) == address), None)


def _netdevs(dev_dir: Path) -> tuple[str, ...]:
    try:
        return tuple(sorted(p.name for p in (dev_dir / "net").iterdir()))
    except OSError:
        return ()


def read_pci_function(address: str, sys: Path = SYS) -> PciFunction:
    """One PCI address through sysfs; a VF is found from its ``physfn`` link."""
    devices = sys / "bus" / "pci" / "devices"
    dev = devices / address
    if not dev.exists():
        return PciFunction(address, exists=False)
    driver = _link_name(dev / "driver")
    pf = _link_name(dev / "physfn")
    if pf is None:
        return PciFunction(address, exists=True, driver=driver)
    pf_dir = devices / pf
    return PciFunction(
        address, exists=True, pf_address=pf, pf_netdevs=_netdevs(pf_dir), vf_index=_vf_index(pf_dir, address),
        driver=driver,
    )  # fmt: skip


def read_pci_functions(addresses: Iterable[str], sys: Path = SYS) -> tuple[PciFunction, ...]:
    return tuple(read_pci_function(a, sys) for a in sorted(set(addresses)))


def _vlan(raw: Mapping[str, Any]) -> tuple[int, int]:
    """(vlan, qos): the first ``vlan_list`` entry (iproute2 leaves out zero fields), else the
    legacy top-level keys."""
    vlans = objs(raw.get("vlan_list"), "vlan_list")
    src = vlans[0] if vlans else raw
    return opt_int(src.get("vlan"), "vlan") or 0, opt_int(src.get("qos"), "qos") or 0


def _flag(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise JsonShapeError(f"{what}: expected a boolean, got {type(value).__name__}")


def parse_vf_table(pf: str, link: Mapping[str, Any]) -> tuple[VfConfig, ...]:
    """The ``vfinfo_list`` of one ``ip -d -j link show`` link object. Raises JsonShapeError."""
    out = []
    for raw in objs(link.get("vfinfo_list"), "vfinfo_list"):
        index = opt_int(raw.get("vf"), "vf")
        if index is None:
            raise JsonShapeError("vfinfo_list: an entry without 'vf'")
        mac = opt_str(raw.get("address", raw.get("mac")), "address")
        vlan, qos = _vlan(raw)
        out.append(
            VfConfig(
                pf=pf, index=index, mac=mac.lower() if mac else None, vlan=vlan, qos=qos,
                spoofchk=_flag(raw.get("spoofchk"), "spoofchk"), trust=_flag(raw.get("trust"), "trust"),
                link_state=opt_str(raw.get("link_state"), "link_state"),
            )
        )  # fmt: skip
    return tuple(out)


def vf_tables_from_dump(dump: Any, pfs: Iterable[str]) -> dict[str, tuple[VfConfig, ...]]:
    """The VF tables of the named PFs found in an ``ip -d -j link show`` dump (a list of links)."""
    wanted = set(pfs)
    out = {}
    for link in objs(dump, "links"):
        name = opt_str(link.get("ifname"), "ifname")
        if name in wanted:
            out[name] = parse_vf_table(name, obj(link, "link"))
    return out


def read_vf_table(pf: str, timeout: float = 3.0) -> tuple[VfConfig, ...]:
    """``ip -d -j link show dev PF`` (iproute2 asks the kernel for VF info, RTEXT_FILTER_VF).
    Short timeout: this runs inside the exporter's and top's snapshot deadline too.
    Raises CommandError or JsonShapeError."""
    dump = run_json(["ip", "-d", "-j", "link", "show", "dev", pf], timeout=timeout)
    return vf_tables_from_dump(dump, [pf]).get(pf, ())
