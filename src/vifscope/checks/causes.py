"""Which finding follows from which: one destroyed network gives ``network.inactive``, then a
``bridge.missing`` and a ``vif.detached`` per guest on it. All are true, but an admin needs the
one root to act on first (Alertmanager calls this inhibition; here nothing is hidden, the
followers only point at their root). Pure: findings and bindings in, links out.

A rule names a follower check, the root checks it can follow from, and how both are keyed:
a follower follows from a root finding of the same key. Rules are a table, applied until
nothing changes, so a chain (network → bridge → vif) ends at its first link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from vifscope.model import Finding, VifBinding

Key = tuple[str, ...]
KeyOf = Callable[[Finding, Mapping[tuple[str, str], str]], Key | None]


def _vif(f: Finding) -> tuple[str, str]:
    return (f.domain or "", f.mac or f.target or "")


def _vif_subject(f: Finding, _nets: Mapping[tuple[str, str], str]) -> Key | None:
    """The vif and the bridge it names: a detached vif follows from its bridge being gone."""
    return None if f.domain is None or f.subject is None else (*_vif(f), f.subject)


def _vif_network(f: Finding, nets: Mapping[tuple[str, str], str]) -> Key | None:
    """A vif's missing bridge follows from its libvirt network being down or bridgeless."""
    net = nets.get(_vif(f))
    return None if net is None else (net,)


def _subject(f: Finding, _nets: Mapping[tuple[str, str], str]) -> Key | None:
    return None if f.domain is not None or f.subject is None else (f.subject,)


def _vif_only(f: Finding, _nets: Mapping[tuple[str, str], str]) -> Key | None:
    """libvirt's ``<bandwidth>`` not in force on a vif whose kernel cannot run it (no sfq,
    police): the kernel finding on that vif is the root."""
    return None if f.domain is None else _vif(f)


@dataclass(frozen=True)
class Rule:
    follower: str
    follower_key: KeyOf
    roots: tuple[str, ...]
    root_key: KeyOf


RULES: tuple[Rule, ...] = (
    Rule("vif.detached", _vif_subject, ("bridge.missing",), _vif_subject),
    Rule("bridge.missing", _vif_network, ("network.inactive", "network.bridge_missing"), _subject),
    Rule("qos.not_enforced", _vif_only, ("qos.kernel_unsupported",), _vif_only),
)


def _network_of(bindings: Sequence[VifBinding]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for b in bindings:
        net = b.expect.network.name if b.expect.network is not None else b.vif.network
        if net:
            out[(b.vif.domain, b.vif.mac or b.vif.target or "")] = net
    return out


def _direct_causes(findings: Sequence[Finding], nets: Mapping[tuple[str, str], str]) -> dict[int, int]:
    """follower index → index of the root finding it follows from (one step)."""
    out: dict[int, int] = {}
    for rule in RULES:
        roots: dict[Key, int] = {}
        for i, f in enumerate(findings):
            key = rule.root_key(f, nets) if f.check in rule.roots else None
            if key is not None:
                roots.setdefault(key, i)
        for i, f in enumerate(findings):
            key = rule.follower_key(f, nets) if f.check == rule.follower else None
            if key is not None and key in roots and i not in out:
                out[i] = roots[key]
    return out


def root_causes(findings: Sequence[Finding], bindings: Sequence[VifBinding]) -> dict[int, int]:
    """For each finding that follows from another, the index of its ultimate root."""
    direct = _direct_causes(findings, _network_of(bindings))
    out: dict[int, int] = {}
    for i in direct:
        root, seen = direct[i], {i}
        while root in direct and root not in seen:  # rules are acyclic; the guard keeps it so
            seen.add(root)
            root = direct[root]
        out[i] = root
    return out
