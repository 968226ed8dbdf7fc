"""``vifscope mac conflicts``: MACs that collide on this host, and store records that disagree
with it. Pure functions over model types.

On the host it runs doctor's own MAC checks (``mac.duplicate``, ``mac.host_conflict``,
``mac.invalid``), so both commands say the same about the same host. Against the store it
adds four findings, not part of doctor's registry (doctor has no store to read):

- ``mac.unrecorded``: a MAC in use here, inside a pool, that the store does not know: the
  pool may hand it out (``vifscope mac import`` records it);
- ``mac.released_in_use``: released (quarantined) yet still on a NIC here: once the
  quarantine ends the pool hands it out again;
- ``mac.store_mismatch``: the store says this host's MAC belongs to another domain;
- ``mac.store_stale``: imported from this host, or allocated for a domain of it, and on no
  NIC here any more (info: release it to give it back to the pool).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from vifscope.checks.base import CheckContext
from vifscope.checks.runner import CHECKS_BY_ID, order
from vifscope.model import Command, DeclaredVif, Evidence, Finding, Fix, HostSnapshot, Severity, VifBinding
from vifscope.model.mac import MacError, MacPool, MacRecord, MacState, containing, format_mac, in_quarantine, parse_mac

HOST_CHECKS = ("mac.duplicate", "mac.host_conflict", "mac.invalid")
TITLES: dict[str, str] = {
    "mac.unrecorded": "MAC in a pool, unknown to the store",
    "mac.released_in_use": "released MAC still in use",
    "mac.store_mismatch": "store names another domain",
    "mac.store_stale": "store record with no NIC",
}


def host_findings(snap: HostSnapshot, bindings: Sequence[VifBinding]) -> tuple[Finding, ...]:
    """Doctor's MAC checks on this host: duplicates among domains (running or defined),
    guest MACs that a host link also has, and MACs no NIC may have."""
    ctx = CheckContext(snap, tuple(bindings))
    return order(f for cid in HOST_CHECKS for f in CHECKS_BY_ID[cid].run(ctx))


@dataclass(frozen=True)
class StoreView:
    """What the store holds, as seen at ``now`` by host ``host``."""

    records: tuple[MacRecord, ...]
    pools: tuple[MacPool, ...]
    host: str
    now: float


MAC_IMPORT = Command(("vifscope", "mac", "import"))


def in_use(vifs: Iterable[DeclaredVif]) -> dict[int, list[DeclaredVif]]:
    """Vifs by MAC (as integers); malformed MACs are left to ``mac.invalid``."""
    out: dict[int, list[DeclaredVif]] = {}
    for v in vifs:
        try:
            mac = parse_mac(v.mac or "")
        except MacError:
            continue
        out.setdefault(mac, []).append(v)
    return out


def _finding(
    check: str, sev: Severity, msg: str, v: DeclaredVif | None, ev: list[tuple[str, Evidence]], fix: Fix
) -> Finding:
    mac = next((str(value) for key, value in ev if key == "mac"), None)
    if v is None:
        return Finding(check, sev, "network", msg, mac=mac, evidence=tuple(ev), fix=fix, subject="store")
    return Finding(check, sev, "network", msg, v.domain, mac, v.target, tuple(ev), fix)


def _vif_findings(mac: int, vifs: list[DeclaredVif], rec: MacRecord | None, view: StoreView) -> Iterator[Finding]:
    text, v = format_mac(mac), vifs[0]
    doms = sorted({x.domain for x in vifs})
    if rec is None:
        pool = containing(mac, view.pools)
        if pool is not None:
            ev: list[tuple[str, Evidence]] = [("mac", text), ("pool", pool.name), ("domains", ", ".join(doms))]
            msg = f"{text} is in use here but pool {pool.name} does not know it: it may hand it out"
            yield _finding("mac.unrecorded", Severity.WARNING, msg, v, ev, Fix((MAC_IMPORT,)))
    elif rec.state is MacState.QUARANTINED:
        free_now = not in_quarantine(rec, view.now)
        sev = Severity.ERROR if free_now else Severity.WARNING
        ev = [("mac", text), ("reusable_at", rec.reusable_at), ("reusable_now", free_now), ("domains", ", ".join(doms))]
        msg = f"{text} was released but {', '.join(doms)} still use(s) it"
        yield _finding("mac.released_in_use", sev, msg, v, ev, Fix((MAC_IMPORT,), "records it as in use again"))
    elif rec.domain and rec.domain not in doms and rec.host in (None, view.host):
        ev = [("mac", text), ("store_domain", rec.domain), ("host_domains", ", ".join(doms)), ("state", rec.state)]
        msg = f"the store has {text} for domain {rec.domain}, but here {', '.join(doms)} use(s) it"
        yield _finding(
            "mac.store_mismatch", Severity.WARNING, msg, v, ev, Fix(note=f"check which domain should have {text}")
        )


def _stale(rec: MacRecord, domains: set[str]) -> bool:
    """Imported here and gone; or allocated for a domain that exists here without it (a MAC
    allocated before its domain is defined is the usual order, not stale)."""
    if rec.state is MacState.IMPORTED:
        return True
    return rec.state is MacState.ALLOCATED and rec.domain in domains


def store_findings(vifs: Sequence[DeclaredVif], view: StoreView) -> tuple[Finding, ...]:
    """Where the store and this host's domains disagree (see the module's docstring)."""
    used = in_use(vifs)
    by_mac = {r.mac: r for r in view.records}
    found = [f for mac, group in sorted(used.items()) for f in _vif_findings(mac, group, by_mac.get(mac), view)]
    here = {v.domain for v in vifs}
    for rec in view.records:
        if rec.host == view.host and rec.mac not in used and _stale(rec, here):
            ev: list[tuple[str, Evidence]] = [("mac", rec.text), ("state", rec.state), ("domain", rec.domain)]
            msg = f"the store has {rec.text} ({rec.state}) for this host, but no domain here uses it"
            release = Fix((Command(("vifscope", "mac", "release", rec.text)),))
            found.append(_finding("mac.store_stale", Severity.INFO, msg, None, ev, release))
    return order(found)
