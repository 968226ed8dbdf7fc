"""Guest addresses from the QEMU guest agent (``virsh domifaddr --source agent``), for
``status --agent`` only.

Why a separate, read-write connection: libvirt refuses the agent source on a read-only one
(VIR_ERR_OPERATION_DENIED: the agent runs code in the guest), and everything else vifscope
reads stays read-only. Only this call uses it; it never changes anything. A guest without an
agent (not configured, not running) is no error: its addresses come from leases and ARP.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


@dataclass(frozen=True)
class AgentRead:
    """What the agents said. ``addresses`` None: they could not be asked (see notes / errors)."""

    addresses: tuple[GuestAddress, ...] | None
    notes: tuple[str, ...] = ()
    errors: tuple[SourceError, ...] = ()


def _ask(dom: Any) -> tuple[GuestAddress, ...] | Exception:
    import libvirt

    try:
        return tuple(parse_agent_interfaces(dom.name(), dom.interfaceAddresses(AGENT_SOURCE)))
    except libvirt.libvirtError as exc:  # handed back: no agent here, or refused (read-only)
        failed: Exception = exc
        return failed


def _denied(exc: Exception) -> bool:
    import libvirt

    return isinstance(exc, libvirt.libvirtError) and exc.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED


def ask_agents(conn: Any) -> AgentRead:
    """Every running domain's agent, a few calls in flight at once."""
    doms = [dom for dom, state in domains_with_state(conn) if state in ACTIVE_STATES]
    with ThreadPoolExecutor(max_workers=AGENT_CALLS, thread_name_prefix="vifscope-agent") as pool:
        answers = list(pool.map(_ask, doms))
    if any(isinstance(a, Exception) and _denied(a) for a in answers):
        return AgentRead(None, ("guest agent refused: the libvirt connection is read-only",))
    found = [a for a in answers if not isinstance(a, Exception)]
    note = f"guest agent answered for {len(found)} of {len(doms)} running domains"
    return AgentRead(tuple(addr for got in found for addr in got), (note,))


def read_agent_addresses(uri: str, opener: Callable[[str], Any] | None = None) -> AgentRead:
    """Open a read-write connection to ``uri`` and ask every running guest's agent. Never
    raises for libvirt: a connection that cannot be opened is an ``agent`` source error."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are reported as data
    try:
        conn = (opener or libvirt.open)(uri)
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
