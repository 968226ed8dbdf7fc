"""The packet filter's view of forwarded traffic: base-chain policies, source-NAT rules, and
interfaces forward rules accept. From ``nft -j list ruleset`` (every nf_tables table,
including iptables-nft's) plus ``iptables-legacy-save`` where legacy tables exist.

Why both: Docker and older distributions still load legacy x_tables rules, which nft
does not show; a DROP policy there drops bridged traffic just the same.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from typing import Any

from vifscope.model import Firewall, FirewallChain, NatRule
from vifscope.sources.cmd import CommandError, run_json, run_text
from vifscope.sources.jsonshape import JsonShapeError, items, obj, objs, opt_str

_NAT_TARGETS = {"masquerade": "masquerade", "snat": "snat", "MASQUERADE": "masquerade", "SNAT": "snat"}
_FORWARD_FAMILIES = frozenset({"ip", "ip6", "inet"})


def _match_value(expr: Mapping[str, Any], *, meta: str | None = None, field: str | None = None) -> str | None:
    """The right-hand side of an ``==`` match on ``meta <meta>`` or ``ip <field>``."""
    match = expr.get("match")
    if not isinstance(match, Mapping) or match.get("op", "==") != "==":
        return None
    left, right = obj(match.get("left"), "match.left"), match.get("right")
    if meta is not None and obj(left.get("meta"), "meta").get("key") != meta:
        return None
    if field is not None and obj(left.get("payload"), "payload").get("field") != field:
        return None
    if isinstance(right, Mapping) and "prefix" in right:
        prefix = obj(right["prefix"], "prefix")
        return f"{prefix.get('addr')}/{prefix.get('len')}"
    return str(right) if isinstance(right, str | int) else None


def _first(exprs: list[Mapping[str, Any]], **kw: str) -> str | None:
    return next((v for e in exprs if (v := _match_value(e, **kw)) is not None), None)


def _nat_target(exprs: list[Mapping[str, Any]]) -> str | None:
    for e in exprs:
        for key in ("masquerade", "snat"):
            if key in e:
                return _NAT_TARGETS[key]
        xt = e.get("xt")
        if isinstance(xt, Mapping) and xt.get("type") == "target":
            name = xt.get("name")
            if isinstance(name, str) and name in _NAT_TARGETS:
                return _NAT_TARGETS[name]
    return None


def _rule_facts(rule: Mapping[str, Any], nat: list[NatRule], accepts: set[str] | None) -> None:
    """NAT rules from any chain; accepted interfaces only from chains forwarded traffic reaches
    (``accepts`` is None elsewhere: an ``iifname br0 accept`` in an input chain lets the host,
    not the guests, talk)."""
    exprs = [e for e in items(rule.get("expr"), "expr") if isinstance(e, Mapping)]
    target = _nat_target(exprs)
    if target is not None:
        source = _first(exprs, field="saddr")
        out = _first(exprs, meta="oifname")
        nat.append(NatRule(str(rule.get("table")), str(rule.get("chain")), target, source, out))
    elif accepts is not None and any("accept" in e for e in exprs):
        for key in ("iifname", "oifname"):
            if (name := _first(exprs, meta=key)) is not None:
                accepts.add(name)


ChainKey = tuple[str | None, str | None, str | None]


def _rule_key(rule: Mapping[str, Any]) -> ChainKey:
    return tuple(opt_str(rule.get(k), k) for k in ("family", "table", "chain"))  # type: ignore[return-value]


def _jump_targets(rule: Mapping[str, Any]) -> list[str]:
    """Chains a rule hands packets to (``jump``/``goto`` verdicts), in the rule's table."""
    out: list[str] = []
    for e in items(rule.get("expr"), "expr"):
        for verdict in ("jump", "goto"):
            if isinstance(e, Mapping) and isinstance(e.get(verdict), Mapping):
                target = e[verdict].get("target")
                if isinstance(target, str):
                    out.append(target)
    return out


def _reachable(start: Iterable[ChainKey], edges: Mapping[ChainKey, list[ChainKey]]) -> set[ChainKey]:
    seen: set[ChainKey] = set()
    todo = list(start)
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(edges.get(key, ()))
    return seen


def _forward_chains(chains: list[FirewallChain], rules: list[Mapping[str, Any]]) -> set[ChainKey]:
    """Every chain forwarded packets pass: forward-hook base chains of the IP families and the
    regular chains they jump or go to (libvirt's LIBVIRT_FWI/FWO, Docker's DOCKER-USER)."""
    edges: dict[ChainKey, list[ChainKey]] = {}
    for rule in rules:
        fam, table, chain = _rule_key(rule)
        edges.setdefault((fam, table, chain), []).extend((fam, table, t) for t in _jump_targets(rule))
    start = [(c.family, c.table, c.name) for c in chains if c.hook == "forward" and c.family in _FORWARD_FAMILIES]
    return _reachable(start, edges)


def _chain(c: Mapping[str, Any]) -> FirewallChain:
    try:
        family, table, name, hook = (str(opt_str(c[k], k)) for k in ("family", "table", "name", "hook"))
    except KeyError as exc:
        raise JsonShapeError(f"base chain without {exc}") from exc
    policy = opt_str(c.get("policy", "accept"), "policy") or "accept"
    return FirewallChain(family, table, name, hook, policy)


def parse_nft_ruleset(doc: Any) -> Firewall:
    """``nft -j list ruleset`` → base chains, NAT rules, and forward-accepted interfaces.
    Raises JsonShapeError when the document is not of nftables' shape."""
    chains: list[FirewallChain] = []
    rules: list[Mapping[str, Any]] = []
    for item in objs(obj(doc, "ruleset").get("nftables"), "nftables"):
        if "chain" in item and obj(item["chain"], "chain").get("hook"):
            chains.append(_chain(item["chain"]))
        elif "rule" in item:
            rules.append(obj(item["rule"], "rule"))
    forward = _forward_chains(chains, rules)
    nat: list[NatRule] = []
    accepts: set[str] = set()
    for rule in rules:
        _rule_facts(rule, nat, accepts if _rule_key(rule) in forward else None)
    return Firewall(tuple(chains), tuple(nat), tuple(sorted(accepts)))


def _opt(words: list[str], flag: str) -> str | None:
    """The value after ``flag`` in an iptables-save rule; None when absent or negated (``! -d``)."""
    if flag not in words[:-1]:
        return None
    i = words.index(flag)
    return None if i > 0 and words[i - 1] == "!" else words[i + 1]


def _legacy_rule(table: str, words: list[str], nat: list[NatRule], accepts: set[str] | None) -> None:
    target = _opt(words, "-j")
    chain = words[1] if len(words) > 1 else ""
    if target in _NAT_TARGETS:
        nat.append(NatRule(table, chain, _NAT_TARGETS[target], _opt(words, "-s"), _opt(words, "-o"), "iptables-legacy"))
    elif target == "ACCEPT" and accepts is not None:
        accepts.update(x for x in (_opt(words, "-i"), _opt(words, "-o")) if x)


def _legacy_forward(rules: list[tuple[str, list[str]]]) -> set[ChainKey]:
    """The filter table's FORWARD chain and the user chains it jumps or goes to."""
    edges: dict[ChainKey, list[ChainKey]] = {}
    for table, words in rules:
        chain = words[1] if len(words) > 1 else ""
        targets = [t for t in (_opt(words, "-j"), _opt(words, "-g")) if t]
        edges.setdefault((None, table, chain), []).extend((None, table, t) for t in targets)
    return _reachable([(None, "filter", "FORWARD")], edges)


def parse_iptables_save(text: str, family: str = "ip") -> Firewall:
    """``iptables-legacy-save`` text: builtin chain policies (``:FORWARD DROP``) and rules."""
    chains: list[FirewallChain] = []
    rules: list[tuple[str, list[str]]] = []
    table = ""
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].startswith("*"):
            table = words[0][1:]
        elif words[0].startswith(":") and len(words) >= 2 and words[1] != "-":
            name = words[0][1:]
            chains.append(FirewallChain(family, table, name, name.lower(), words[1].lower(), "iptables-legacy"))
        elif words[0] == "-A":
            rules.append((table, words))
    forward = _legacy_forward(rules)
    nat: list[NatRule] = []
    accepts: set[str] = set()
    for table, words in rules:
        key = (None, table, words[1] if len(words) > 1 else "")
        _legacy_rule(table, words, nat, accepts if key in forward else None)
    return Firewall(tuple(chains), tuple(nat), tuple(sorted(accepts)))


def merge(parts: Iterable[Firewall]) -> Firewall:
    items = list(parts)
    return Firewall(
        chains=tuple(c for f in items for c in f.chains),
        nat_rules=tuple(r for f in items for r in f.nat_rules),
        forward_accept_ifaces=tuple(sorted({i for f in items for i in f.forward_accept_ifaces})),
    )


def read_firewall(timeout: float = 10.0) -> Firewall:
    """nf_tables always (raises CommandError when nft is missing); legacy tables when present."""
    doc = run_json(["nft", "-j", "list", "ruleset"], timeout=timeout)
    try:
        parts = [parse_nft_ruleset(doc if isinstance(doc, Mapping) else {})]
    except JsonShapeError as exc:
        raise CommandError(f"'nft -j list ruleset' printed JSON of another shape: {exc}") from exc
    for exe, family in (("iptables-legacy-save", "ip"), ("ip6tables-legacy-save", "ip6")):
        if shutil.which(exe) is None:
            continue
        try:
            parts.append(parse_iptables_save(run_text([exe], timeout=timeout), family))
        except CommandError:
            continue  # no legacy x_tables in this kernel: nothing there to drop packets
    return merge(parts)
