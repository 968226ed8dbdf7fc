"""Golden-check hosts with hostile names: every domain, interface and network renamed to a
string Linux or libvirt accepts and a shell does not (``;``, ``$(...)``, backticks, quotes,
spaces, a leading ``-``, unicode, 15 bytes).

The rename is by value, through the whole snapshot (vifs, links, OVS, networks, facts), so a
case still describes the same host: the same checks fire, now on names that must be quoted.
Interface names obey the kernel's rules (at most 15 bytes, no whitespace, no ``/`` or ``:``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.golden_checks.loader import CASES_DIR, load_case
from vifscope.checks import DoctorConfig
from vifscope.model import HostSnapshot
from vifscope.model.qospolicy import IFB_PREFIX

IFNAMSIZ = 16
IFACES = (
    "vt;id",
    "br$(id)",
    "-x",
    "t`id`",
    "q'\"x",
    "vé;ü",
    "a$(id)`b`;'\"c-d",  # 15 bytes: IFNAMSIZ - 1
    "--may-exist",
    "h",
    "up",
    "-br",
    "x&&y|z>w",
    "v#c",
    "*?[a]",
    "~root",
)
DOMAINS = ("web 1 $(touch x)", "-d;id", "--live", "d`id`'\"", "dôm ü", "a&&b|c>d", "#x y", "$HOME")
NETWORKS = ("net $(id) 'q\"", "--n", "n;`id`", "nét 2", "-", "n>x")
PROFILES = 3  # each case is renamed three ways, so each name lands in every argv position
KEEP = frozenset({"lo", "ovs-system"})  # names the kernel and OVS give a meaning to


def _fit(name: str) -> str:
    """Shorten to a valid interface name (at most IFNAMSIZ - 1 bytes)."""
    while len(name.encode()) >= IFNAMSIZ:
        name = name[:-1]
    return name


def _pick(names: list[str], pool: tuple[str, ...], offset: int, iface: bool) -> dict[str, str]:
    out = {}
    for i, name in enumerate(names):
        new = pool[(i + offset) % len(pool)]
        if i >= len(pool):  # more names than the pool: prefix the index (still unique)
            new = f"{i}{new}"
        out[name] = _fit(new) if iface else new
    assert len(set(out.values())) == len(out), out
    return out


def _interfaces(snap: HostSnapshot) -> set[str]:
    names = {link.name for link in snap.links} | {p.name for p in snap.ovs_ports} | set(snap.ovs_bridges)
    names |= {n.bridge for n in snap.networks if n.bridge}
    for v in snap.vifs:
        names |= {x for x in (v.target, v.live_dev, v.live_bridge) if x}
        if v.type in ("bridge", "direct") and v.source:
            names.add(v.source)
    owned = {n for n in names if n.startswith(IFB_PREFIX)}  # vifscope's own ifb names (vsq-<ifindex>)
    return names - KEEP - owned


def renames(snap: HostSnapshot, profile: int) -> dict[str, str]:
    """Old name -> hostile name, for every interface, network and domain of ``snap``."""
    ifaces = sorted(_interfaces(snap))
    out = _pick(ifaces, IFACES, profile * 5, iface=True)
    networks = sorted({n.name for n in snap.networks} | {v.network for v in snap.vifs if v.network} - out.keys())
    out.update(_pick(networks, NETWORKS, profile, iface=False))
    domains = sorted({v.domain for v in snap.vifs} - out.keys())
    out.update(_pick(domains, DOMAINS, profile * 3, iface=False))
    return out


def rename(obj: Any, names: dict[str, str]) -> Any:
    """``obj`` with every string equal to an old name replaced (dataclasses rebuilt, so no cached
    property survives). Enums stay: only plain ``str`` values are names."""
    if type(obj) is str:
        return names.get(obj, obj)
    if isinstance(obj, tuple):
        return tuple(rename(x, names) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: rename(getattr(obj, f.name), names) for f in dataclasses.fields(obj) if f.init}
        return type(obj)(**fields)
    return obj


@dataclass(frozen=True)
class HostileCase:
    name: str  # "<golden case>/<profile>"
    snap: HostSnapshot
    config: DoctorConfig
    names: dict[str, str]


def _config(meta: dict[str, Any]) -> DoctorConfig:
    return DoctorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.get("config", {}).items()})


@cache
def hostile_cases() -> tuple[HostileCase, ...]:
    """Every golden-checks case, renamed PROFILES ways."""
    out = []
    for path in sorted(p for p in Path(CASES_DIR).iterdir() if p.is_dir()):
        case = load_case(path)
        for profile in range(PROFILES):
            names = renames(case.snap, profile)
            out.append(HostileCase(f"{case.name}/{profile}", rename(case.snap, names), _config(case.meta), names))
    return tuple(out)
