"""Checks no single host can make: pure functions over the hosts' answers, each with a stable
id, a severity, evidence and a fix, like doctor's (vifscope.checks).

- ``fleet.mac_duplicate``: one MAC on running guests of two hosts. Two hosts with the same
  ``segment`` label share an L2: an error (frames go to whichever port the switch learnt last).
  When either host has no ``segment``, the fleet cannot tell: a warning. Different segments:
  nothing. Shut-off definitions are left out: a guest defined on two hosts for migration
  carries its MAC on both, and only the running copy is on the wire.
- ``fleet.ip_duplicate``: one guest address reported on two hosts' running vifs (same rule
  for segments); link-local addresses are left out. Needs agents that report ``addresses``.
- ``fleet.version_skew``: agents running different vifscope versions (their answers may
  differ in fields and checks): a warning naming the hosts off the most common version. An
  agent without /api/v1/host is older than every one that has it.
- ``fleet.host_unreachable``: a host whose agent did not answer within the timeout.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from vifscope.fleet.model import HostAnswer, RemoteVif
from vifscope.model import Command, Evidence, Finding, Fix, Severity

TITLES: dict[str, str] = {
    "fleet.mac_duplicate": "MAC on two hosts",
    "fleet.ip_duplicate": "guest address on two hosts",
    "fleet.version_skew": "agents on different versions",
    "fleet.host_unreachable": "agent did not answer",
}


@dataclass(frozen=True)
class FleetFinding:
    finding: Finding
    hosts: tuple[str, ...]  # the hosts it is about (one for host_unreachable)


def _segment_groups(hosts: dict[str, str | None]) -> Iterator[tuple[Severity, tuple[str, ...], str | None]]:
    """The host groups that may share an L2: (severity, hosts, segment) for each known segment
    with two or more hosts, then one warning group when a host of unknown segment is involved."""
    by_segment: dict[str, list[str]] = {}
    for host, seg in hosts.items():
        if seg is not None:
            by_segment.setdefault(seg, []).append(host)
    for seg, members in sorted(by_segment.items()):
        if len(members) > 1:
            yield Severity.ERROR, tuple(sorted(members)), seg
    if len(hosts) > 1 and any(seg is None for seg in hosts.values()):
        yield Severity.WARNING, tuple(sorted(hosts)), None


def _where(vifs: Sequence[RemoteVif], hosts: tuple[str, ...]) -> str:
    return ", ".join(f"{v.host}:{v.domain}" for v in vifs if v.host in hosts)


def _on_the_wire(
    answers: Sequence[HostAnswer], keys: Callable[[RemoteVif], Sequence[str]]
) -> dict[str, list[RemoteVif]]:
    """Running vifs by key (a MAC, an address), each vif once per key."""
    seen: dict[str, list[RemoteVif]] = {}
    for a in answers:
        for v in a.vifs:
            if v.active:
                for key in dict.fromkeys(keys(v)):
                    seen.setdefault(key, []).append(v)
    return seen


def _duplicate(
    check: str, noun: str, key: str, where: str, group: tuple[Severity, tuple[str, ...], str | None]
) -> Finding:
    sev, hosts, seg = group
    scope = f"in segment {seg}" if seg else "(segment unknown: they may not share an L2)"
    ev: tuple[tuple[str, Evidence], ...] = ((noun, key), ("hosts", ",".join(hosts)), ("segment", seg), ("vifs", where))
    note = f"give one of them another {noun}: a running guest's {noun} changes only with its definition"
    if seg is None:
        note = f"label each host's L2 with labels: {{segment: ...}} in the inventory; if they share one, {note}"
    msg = f"{noun} {key} is on running guests of {len(hosts)} hosts {scope}: {where}"
    mac = key if check == "fleet.mac_duplicate" else None
    return Finding(check, sev, "network", msg, mac=mac, evidence=ev, fix=Fix(note=note), subject="fleet")


def _duplicates(
    answers: Sequence[HostAnswer], check: str, noun: str, keys: Callable[[RemoteVif], Sequence[str]]
) -> Iterator[FleetFinding]:
    segment = {a.name: a.host.segment for a in answers}
    for key, vifs in sorted(_on_the_wire(answers, keys).items()):
        for group in _segment_groups({v.host: segment[v.host] for v in vifs}):
            hosts = group[1]
            yield FleetFinding(_duplicate(check, noun, key, _where(vifs, hosts), group), hosts)


def _routable(v: RemoteVif) -> list[str]:
    out = []
    for text in v.addresses:
        try:
            addr = ipaddress.ip_address(text.split("/")[0])
        except ValueError:
            continue
        if not addr.is_link_local and not addr.is_unspecified:
            out.append(str(addr))
    return out


def mac_duplicates(answers: Sequence[HostAnswer]) -> Iterator[FleetFinding]:
    return _duplicates(answers, "fleet.mac_duplicate", "MAC", lambda v: [v.mac] if v.mac else [])


def ip_duplicates(answers: Sequence[HostAnswer]) -> Iterator[FleetFinding]:
    return _duplicates(answers, "fleet.ip_duplicate", "address", _routable)


OLD_AGENT = "older (no /api/v1/host)"


def version_skew(answers: Sequence[HostAnswer]) -> Iterator[FleetFinding]:
    versions = {a.name: a.info.version if a.info else OLD_AGENT for a in answers}
    counts = Counter(versions.values())
    if len(counts) < 2:
        return
    common = max(sorted(counts), key=lambda v: counts[v])
    off = tuple(sorted(h for h, v in versions.items() if v != common))
    spread = ", ".join(f"{v} on {counts[v]}" for v in sorted(counts))
    msg = f"agents run {len(counts)} vifscope versions ({spread}); off {common}: {', '.join(off)}"
    ev: tuple[tuple[str, Evidence], ...] = (("versions", spread), ("most_common", common), ("hosts", ",".join(off)))
    fix = Fix(note=f"upgrade or downgrade vifscope on {', '.join(off)} to {common}")
    yield FleetFinding(
        Finding("fleet.version_skew", Severity.WARNING, "host", msg, evidence=ev, fix=fix, subject="fleet"), off
    )


def unreachable(answers: Sequence[HostAnswer]) -> Iterator[FleetFinding]:
    for a in answers:
        if a.error is None:
            continue
        ev: tuple[tuple[str, Evidence], ...] = (("host", a.name), ("url", a.host.url), ("error", a.error))
        probe = Command(("curl", "-sS", "--max-time", "5", a.host.url + "healthz"))
        fix = Fix((probe,), note="is vifscope serve running there, and reachable from this hub?")
        msg = f"{a.name}: {a.error}"
        yield FleetFinding(
            Finding("fleet.host_unreachable", Severity.ERROR, "host", msg, evidence=ev, fix=fix, subject=a.name),
            (a.name,),
        )


FLEET_CHECKS = (unreachable, mac_duplicates, ip_duplicates, version_skew)


def fleet_findings(answers: Sequence[HostAnswer]) -> tuple[FleetFinding, ...]:
    answered = [a for a in answers if a.error is None]
    found = [f for check in FLEET_CHECKS for f in check(answers if check is unreachable else answered)]
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted(found, key=lambda f: (rank[f.finding.severity], f.finding.check, f.hosts)))
