"""Asking a fleet inventory's agents: the hub page's and ``vifscope fleet``'s shared part (no
web framework imported here: the CLI pays for none)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vifscope.fleet.inventory import Inventory
from vifscope.fleet.merge import OPTIONAL_PATHS, host_answer
from vifscope.fleet.model import HostAnswer
from vifscope.serve.config import ServeConfigError, load_token
from vifscope.sources.agents import AgentReply, AgentTarget, ask_all


@dataclass(frozen=True)
class FleetHub:
    inventory: Inventory
    timeout: float = 10.0  # seconds per agent, for all its answers (doctor's: a deep snapshot)
    concurrency: int = 32


def targets(inv: Inventory) -> tuple[list[AgentTarget], dict[str, AgentReply]]:
    """What to ask each host, and the hosts already answered: one whose token file cannot be
    read has that as its error (the rest of the fleet is still asked)."""
    out: list[AgentTarget] = []
    early: dict[str, AgentReply] = {}
    for h in inv.hosts:
        try:
            token = load_token(h.token_file) if h.token_file else None
        except ServeConfigError as exc:
            early[h.name] = AgentReply(h.name, (), f"token: {exc}", 0.0)
            continue
        out.append(AgentTarget(h.name, h.url, token, h.ca_file))
    return out, early


async def answers(hub: FleetHub, paths: Sequence[str]) -> list[HostAnswer]:
    asking, early = targets(hub.inventory)
    got = await ask_all(asking, paths, timeout=hub.timeout, limit=hub.concurrency, optional=OPTIONAL_PATHS)
    replies = {r.name: r for r in got} | early
    return [host_answer(h, replies[h.name]) for h in hub.inventory.hosts]
