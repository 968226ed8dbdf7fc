"""What a long-running asker holds of each host between rounds (the hub's page, ``fleet sync
--daemon``): the agent's ETags and bodies, sent back as ``If-None-Match``, and the last
answer built from them. A host whose every path answers 304 then costs no transfer and no
parse: the answer held stands.

Entries are keyed by the host's name and URL: a host moved to another agent is asked afresh.
The asker decides when an answer is kept (``fleet sync`` only once it is in the store: a
write that failed must not turn the next 304 into "nothing to do").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vifscope.fleet.inventory import FleetHost
from vifscope.fleet.model import HostAnswer
from vifscope.sources.agents import AgentReply, HeldAnswers


def answer_tag(reply: AgentReply) -> str | None:
    """One string naming the whole answer (every path's ETag), or None when a path has none."""
    held = dict(reply.held)
    if reply.error is not None or (not reply.answers and not reply.unchanged):
        return None
    paths = [p for p, _ in reply.answers] if not reply.unchanged else sorted(held)
    if any(p not in held for p in paths):
        return None
    return " ".join(f"{p}={held[p].etag}" for p in sorted(paths))


@dataclass(frozen=True)
class _Entry:
    url: str
    held: HeldAnswers
    answer: HostAnswer | None


@dataclass
class AnswerCache:
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def _entry(self, host: FleetHost) -> _Entry | None:
        entry = self._entries.get(host.name)
        return entry if entry is not None and entry.url == host.url else None

    def held(self, host: FleetHost) -> HeldAnswers:
        entry = self._entry(host)
        return entry.held if entry is not None else ()

    def last(self, host: FleetHost, seconds: float) -> HostAnswer | None:
        """The answer kept for ``host`` (as of this ask's ``seconds``), if any."""
        entry = self._entry(host)
        if entry is None or entry.answer is None:
            return None
        return replace(entry.answer, host=host, seconds=seconds)

    def keep(self, host: FleetHost, reply: AgentReply, answer: HostAnswer | None = None) -> None:
        """Hold ``reply``'s tagged answers (and ``answer``, when the asker reuses answers)."""
        if reply.error is None and reply.held:
            self._entries[host.name] = _Entry(host.url, reply.held, answer)

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)

    def prune(self, names: set[str]) -> None:
        """Drop the hosts no longer in the inventory."""
        for gone in set(self._entries) - names:
            del self._entries[gone]
