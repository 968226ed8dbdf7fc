"""Asking a fleet inventory's agents: the hub page's and ``vifscope fleet``'s shared part (no
web framework imported here: the CLI pays for none).

The inventory is a ``HostList``: a YAML file read once (``FileHosts``), or the store's
``fleet_inventory`` table read on every round (``StoreHosts``: a host added with ``vifscope
fleet hosts add`` is asked from the next round on, no restart).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from vifscope.fleet.cache import AnswerCache
from vifscope.fleet.inventory import Inventory, inventory_of_entries
from vifscope.fleet.merge import OPTIONAL_PATHS, host_answer
from vifscope.fleet.model import HostAnswer
from vifscope.serve.config import ServeConfigError, load_token
from vifscope.sources.agents import AgentReply, AgentTarget, ask_all

if TYPE_CHECKING:
    from sqlalchemy import Engine


class HostList(Protocol):
    def read(self) -> Inventory:
        """The hosts now; InventoryError for a bad list, StoreError for a store that fails."""
        ...


@dataclass(frozen=True)
class FileHosts:
    inventory: Inventory

    def read(self) -> Inventory:
        return self.inventory


@dataclass(frozen=True)
class StoreHosts:
    engine: Engine
    where: str  # the store's URL without its password, for messages

    def read(self) -> Inventory:
        from vifscope.store.inventory import list_hosts

        rows = list_hosts(self.engine)
        return inventory_of_entries([r.entry() for r in rows], f"{self.where} fleet_inventory")


@dataclass(frozen=True)
class FleetHub:
    hosts: HostList
    timeout: float = 10.0  # seconds per agent, for all its answers (doctor's: a deep snapshot)
    concurrency: int = 32
    # the agents' ETags and the answers built from them: an unchanged host costs 304s only
    cache: AnswerCache = field(default_factory=AnswerCache, compare=False)


def targets(inv: Inventory, cache: AnswerCache | None = None) -> tuple[list[AgentTarget], dict[str, AgentReply]]:
    """What to ask each host (with the answers ``cache`` holds), and the hosts already
    answered: one whose token file cannot be read has that as its error (the rest of the
    fleet is still asked)."""
    out: list[AgentTarget] = []
    early: dict[str, AgentReply] = {}
    for h in inv.hosts:
        try:
            token = load_token(h.token_file) if h.token_file else None
        except ServeConfigError as exc:
            early[h.name] = AgentReply(h.name, (), f"token: {exc}", 0.0)
            continue
        out.append(AgentTarget(h.name, h.url, token, h.ca_file, cache.held(h) if cache else ()))
    return out, early


def merged(inv: Inventory, replies: Mapping[str, AgentReply], cache: AnswerCache | None) -> list[HostAnswer]:
    """Every host's answer in inventory order; an unchanged host's is the one ``cache`` holds."""
    out = []
    for h in inv.hosts:
        reply = replies[h.name]
        kept = cache.last(h, reply.seconds) if cache is not None and reply.unchanged else None
        if kept is None:
            kept = host_answer(h, reply.whole())
            if cache is not None:
                cache.keep(h, reply, kept)
        out.append(kept)
    if cache is not None:
        cache.prune({h.name for h in inv.hosts})
    return out


async def answers(hub: FleetHub, inv: Inventory, paths: Sequence[str]) -> list[HostAnswer]:
    asking, early = targets(inv, hub.cache)
    got = await ask_all(asking, paths, timeout=hub.timeout, limit=hub.concurrency, optional=OPTIONAL_PATHS)
    return merged(inv, {r.name: r for r in got} | early, hub.cache)
