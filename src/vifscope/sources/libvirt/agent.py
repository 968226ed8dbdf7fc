"""Guest addresses from the QEMU guest agent (``virsh domifaddr --source agent``), for
``status --agent`` only.

Why a separate, read-write connection: libvirt refuses the agent source on a read-only one
(VIR_ERR_OPERATION_DENIED: the agent runs code in the guest), and everything else vifscope
reads stays read-only. Only this call uses it; it never changes anything. A guest without an
agent (not configured, not running) is no error: its addresses come from leases and ARP.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vifscope.model import GuestAddress, SourceError
from vifscope.sources.libvirt.conn import ACTIVE_STATES, domains_with_state, hint_for
from vifscope.sources.libvirt.guestip import parse_agent_interfaces

AGENT_SOURCE = 1  # VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT
AGENT_HINT = "the guest agent needs a read-write libvirt connection: run as root (or in the 'libvirt' group)"
NOT_ASKED = "guest agent not asked: vifscope's libvirt connection is read-only (status --agent asks it)"
# Agent calls in flight at once: each is a round trip to libvirtd and on to the guest.
AGENT_CALLS = 8
# libvirt gives the agent's guest-sync 5 s, then waits for the command itself without limit
# (unless someone set virDomainAgentSetResponseTimeout): a guest whose agent hangs must not hang
# status. Agents that have not answered by then are left behind (daemon threads) and counted.
AGENT_DEADLINE = 10.0

Answer = tuple[GuestAddress, ...] | Exception


@dataclass(frozen=True)
class AgentRead:
    """What the agents said. ``addresses`` None: they could not be asked (see notes / errors)."""

    addresses: tuple[GuestAddress, ...] | None
    notes: tuple[str, ...] = ()
    errors: tuple[SourceError, ...] = ()


def _ask(dom: Any) -> Answer:
    import libvirt

    try:
        return tuple(parse_agent_interfaces(dom.name(), dom.interfaceAddresses(AGENT_SOURCE)))
    except libvirt.libvirtError as exc:  # handed back: no agent here, or refused (read-only)
        failed: Exception = exc
        return failed


def _denied(exc: Exception) -> bool:
    import libvirt

    return isinstance(exc, libvirt.libvirtError) and exc.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED


def ask_all(doms: Sequence[Any], deadline: float = AGENT_DEADLINE) -> list[Answer | None]:
    """Each domain's answer (None: none within ``deadline`` seconds), AGENT_CALLS at a time."""
    jobs: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(doms)):
        jobs.put(i)
    answers: list[Answer | None] = [None] * len(doms)
    finished = threading.Semaphore(0)

    def work() -> None:
        while True:
            try:
                i = jobs.get_nowait()
            except queue.Empty:
                return
            answers[i] = _ask(doms[i])
            finished.release()

    for _ in range(min(AGENT_CALLS, len(doms))):
        threading.Thread(target=work, name="vifscope-agent", daemon=True).start()
    end = time.monotonic() + deadline
    for _ in doms:
        if not finished.acquire(timeout=max(0.0, end - time.monotonic())):
            break
    return list(answers)


def ask_agents(conn: Any, deadline: float = AGENT_DEADLINE) -> AgentRead:
    """Every running domain's agent, a few calls in flight at once, within ``deadline``."""
    doms = [dom for dom, state in domains_with_state(conn) if state in ACTIVE_STATES]
    answers = ask_all(doms, deadline)
    if any(isinstance(a, Exception) and _denied(a) for a in answers):
        return AgentRead(None, ("guest agent refused: the libvirt connection is read-only",))
    found = [a for a in answers if a is not None and not isinstance(a, Exception)]
    notes = [f"guest agent answered for {len(found)} of {len(doms)} running domains"]
    late = sum(a is None for a in answers)
    if late:
        notes.append(f"{late} guest agent(s) did not answer within {deadline:g} s")
    return AgentRead(tuple(addr for got in found for addr in got), tuple(notes))


def read_agent_addresses(uri: str) -> AgentRead:
    """Open a read-write connection to ``uri`` and ask every running guest's agent. Never
    raises for libvirt: a connection that cannot be opened is an ``agent`` source error."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are reported as data
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        msg = f"cannot open a read-write connection to {uri}: {str(exc).strip()}"
        return AgentRead(None, errors=(SourceError("agent", msg, AGENT_HINT),))
    try:
        return ask_agents(conn)
    except libvirt.libvirtError as exc:  # listing the domains failed: libvirtd went away
        msg = str(exc).strip()
        return AgentRead(None, errors=(SourceError("agent", f"guest agents at {uri}: {msg}", hint_for(uri, msg)),))
    finally:
        conn.close()
