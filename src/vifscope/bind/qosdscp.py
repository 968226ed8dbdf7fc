"""Declared DSCP marks (domain metadata) against the marks nft enforces on taps. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vifscope.model import DeclaredVif
from vifscope.model.qosdscp import DscpMark, dscp_name


def mark_verdict(declared: int | None, mark: DscpMark | None) -> str:
    """enforced / missing / drift / undeclared / none, as the rate verdicts read."""
    got = mark.value if mark else None
    if declared is None:
        return "undeclared" if mark else "none"
    if mark is None:
        return "missing"
    return "enforced" if got == declared else "drift"


def mark_dict(
    v: DeclaredVif, marks: dict[str, DscpMark], redirected: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    """A vif's ``dscp`` entry for ``qos show --json`` (None: nothing declared or in force).
    ``redirected``: taps whose ingress a tc filter redirects (the tc backend's ifb): their
    packets never reach the chain, so a chain in place is ``bypassed``, not ``enforced``."""
    mark = marks.get(v.target or "") if v.domain_state.has_taps else None
    if v.dscp_mark is None and mark is None:
        return None
    verdict = mark_verdict(v.dscp_mark, mark) if v.domain_state.has_taps else "inactive"
    if verdict == "enforced" and (v.target or "") in redirected:
        verdict = "bypassed"
    return {
        "declared": v.dscp_mark,
        "in_force": {"ipv4": mark.ipv4, "ipv6": mark.ipv6, "chain": mark.chain} if mark else None,
        "verdict": verdict,
        "name": dscp_name(v.dscp_mark) if v.dscp_mark is not None else None,
    }


def mark_rows(
    vifs: Iterable[DeclaredVif], marks: dict[str, DscpMark], redirected: frozenset[str] = frozenset()
) -> dict[tuple[str, str], dict[str, Any]]:
    """(domain, mac) -> ``dscp`` entry, for the vifs that have one."""
    out = {}
    for v in vifs:
        d = mark_dict(v, marks, redirected)
        if d is not None:
            out[(v.domain, (v.mac or "").lower())] = d
    return out
