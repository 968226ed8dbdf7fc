"""What ``fleet sync`` writes of one host's answer: each vif's state as the agent reported it
(vifscope.model.fleetvif keeps the history rules), its guest addresses and the host's record.
An answer of another shape is that host's error, as in ``fleet status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vifscope.fleet.model import HostAnswer, RemoteVif, ShapeError
from vifscope.model.fleetvif import AddressRow, HostRecord, VifState


@dataclass(frozen=True)
class SyncInput:
    """One host's part of a sync: its record, vifs and addresses; or its error alone."""

    host: str
    error: str | None
    record: HostRecord | None = None
    states: tuple[VifState, ...] = ()
    addresses: tuple[AddressRow, ...] = ()


def _opt_str(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ShapeError(f"a vif: '{key}' is not text")


def vif_state(v: RemoteVif) -> VifState:
    raw = v.raw
    index, kind, problems = raw.get("index"), raw.get("type"), raw.get("problems", [])
    if not isinstance(index, int) or not isinstance(kind, str):
        raise ShapeError("a vif: 'index' or 'type' is missing")
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        raise ShapeError("a vif: 'problems' is not a list of text")
    source = _opt_str(raw, "source")
    return VifState(v.domain_uuid, index, v.domain, v.mac, kind, source, v.target, v.status, " ".join(sorted(problems)))


def host_states(answer: HostAnswer) -> tuple[VifState, ...]:
    """The answer's vifs, one per key (an agent never sends two; the last would win)."""
    return tuple({s.key: s for s in map(vif_state, answer.vifs)}.values())


def host_addresses(answer: HostAnswer) -> tuple[AddressRow, ...]:
    """(domain_uuid, index, address, mac) of every guest address the answer reports."""
    return tuple((v.domain_uuid, vif_state(v).index, a, v.mac) for v in answer.vifs for a in sorted(set(v.addresses)))


def finding_counts(findings: Iterable[Mapping[str, object]]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        sev = f.get("severity")
        if isinstance(sev, str) and sev in counts:
            counts[sev] += 1
    return counts


def sync_input(answer: HostAnswer) -> SyncInput:
    if answer.error is not None:
        return SyncInput(answer.name, answer.error)
    try:
        states, addresses = host_states(answer), host_addresses(answer)
    except ShapeError as exc:
        return SyncInput(answer.name, f"its answer: {exc}")
    info = answer.info
    record = HostRecord(
        info.host_id if info else None,
        info.version if info else None,
        info.status if info else None,
        len(states),
        tuple(finding_counts(answer.findings).items()),
    )
    return SyncInput(answer.name, None, record, states, addresses)
