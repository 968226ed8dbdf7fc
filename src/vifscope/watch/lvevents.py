"""libvirt as a live source: an event loop thread, a read-only connection with domain and
network callbacks, and the two narrow reads the engine needs between full resyncs.

The only module of the watcher that touches libvirt-python. Callbacks run on the event
loop thread and do nothing but post an event to the engine's queue (calling libvirt from
inside a callback can deadlock the loop). The engine asks for reads and waits for them, but
each runs on a worker thread with a deadline (as does opening the connection): a hung libvirtd
(socket open, nothing answers) costs the engine seconds, not the length of the hang.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

from vifscope.model import DeclaredVif, LibvirtNetwork
from vifscope.sources.deadline import LIBVIRT_STUCK_HINT, SourceStuck, SourceWorker
from vifscope.sources.libvirt.conn import LibvirtUnavailable, domain_vifs, hint_for, read_network
from vifscope.sources.libvirt.domxml import DomainXmlError
from vifscope.sources.libvirt.netxml import NetworkXmlError
from vifscope.watch.events import DomainChanged, NetworkChanged, SourceDown, WatchEvent

Post = Callable[[WatchEvent], None]

# virDomainEventType and virNetworkEventLifecycleType numbers (stable ABI).
DOMAIN_LIFECYCLE = (
    "defined",
    "undefined",
    "started",
    "suspended",
    "resumed",
    "stopped",
    "shutdown",
    "pmsuspended",
    "crashed",
)
NETWORK_LIFECYCLE = ("defined", "undefined", "started", "stopped")
# A hung libvirtd accepts the connection and never answers: opening it (or one read on it) gets
# this long, then the engine carries on (reconnecting later); an open left behind closes itself
# if it ever ends.
CONNECT_TIMEOUT = 5.0
Opened = tuple[Any, list[int], str]  # connection, its domain callback ids, hostname


class LibvirtReadError(RuntimeError):
    """A read on a live connection failed; ``lost`` says whether the connection is gone."""

    def __init__(self, message: str, lost: bool) -> None:
        super().__init__(message)
        self.lost = lost


def _word(table: tuple[str, ...], code: int) -> str:
    return table[code] if 0 <= code < len(table) else f"event{code}"


def _close_quietly(conn: Any) -> None:
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):  # the daemon is already gone: nothing to release
        conn.close()


def _deregister_and_close(conn: Any, callbacks: list[int]) -> None:
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):  # already broken: closing still releases it
        conn.unregisterCloseCallback()
        for cb in callbacks:
            conn.domainEventDeregisterAny(cb)
    _close_quietly(conn)


def _close_late(fut: Future[Opened]) -> None:
    """A connection that opened after its caller gave up on it: nobody will use it."""
    if not fut.cancelled() and fut.exception() is None:
        _close_quietly(fut.result()[0])


class LibvirtWatcher:
    """One read-only connection with event callbacks; ``connect()`` again after a loss."""

    def __init__(self, uri: str, post: Post, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.uri = uri
        self._post = post
        self._conn: Any = None
        self._callbacks: list[int] = []
        self._generation = 0  # bumped per connection (see _on_close)
        self._timeout = connect_timeout
        self._opener = SourceWorker("libvirt-connect")  # at most one open in flight, even a stuck one
        self._reader = SourceWorker("libvirt-read")  # likewise for the engine's narrow reads

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connect(self) -> str:
        """Open the connection and register callbacks; returns the hostname.

        Raises LibvirtUnavailable (with a hint) when libvirtd cannot be reached or does not
        answer within the connect timeout (hung: its socket accepts, nothing answers).
        """
        self._generation += 1
        fut = self._opener.submit(partial(self._open, self._generation))
        try:
            conn, callbacks, hostname = fut.result(timeout=self._timeout)
        except TimeoutError as exc:
            self._generation += 1  # whatever that late connection reports is stale
            fut.add_done_callback(_close_late)
            raise LibvirtUnavailable(
                f"cannot connect to libvirt at {self.uri}: no answer within {self._timeout:.0f} s", LIBVIRT_STUCK_HINT
            ) from exc
        except SourceStuck as exc:
            raise LibvirtUnavailable(f"cannot connect to libvirt at {self.uri}: {exc}", LIBVIRT_STUCK_HINT) from exc
        self._conn, self._callbacks = conn, callbacks
        return hostname

    def _open(self, generation: int) -> Opened:
        """On the opener's thread: connect, register, ask the hostname (raises LibvirtUnavailable)."""
        import libvirt

        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        try:
            conn = libvirt.openReadOnly(self.uri)
            callbacks = self._register(conn, generation)
            return conn, callbacks, str(conn.getHostname())
        except libvirt.libvirtError as exc:
            msg = str(exc).strip()
            raise LibvirtUnavailable(
                f"cannot connect to libvirt at {self.uri}: {msg}", hint_for(self.uri, msg)
            ) from exc

    def _register(self, conn: Any, generation: int) -> list[int]:
        import libvirt

        conn.registerCloseCallback(self._on_close(generation), None)
        callbacks = [
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None),
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device("added"), None),
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device("removed"), None
            ),
        ]
        conn.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, self._on_network, None)
        # Keepalive makes a silently dead (or hung) peer show up as a close within ~15 s.
        with contextlib.suppress(libvirt.libvirtError):  # in-process drivers (test:///) have none
            conn.setKeepAlive(5, 3)
        return callbacks

    def _on_close(self, generation: int) -> Callable[[Any, int, Any], None]:
        """A close callback bound to one connection: a late close of an old, already replaced
        connection must not tear down the new one."""
        reasons = {0: "error", 1: "end of file", 2: "keepalive timeout", 3: "client closed"}

        def callback(_conn: Any, reason: int, _opaque: Any) -> None:
            if generation == self._generation:
                self._post(SourceDown("libvirt", f"libvirt connection closed: {reasons.get(reason, reason)}"))

        return callback

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        self._post(DomainChanged(dom.UUIDString(), dom.name(), f"lifecycle:{_word(DOMAIN_LIFECYCLE, event)}"))

    def _on_device(self, what: str) -> Callable[[Any, Any, str, Any], None]:
        def callback(_conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
            self._post(DomainChanged(dom.UUIDString(), dom.name(), f"device-{what}:{alias}"))

        return callback

    def _on_network(self, _conn: Any, net: Any, event: int, _detail: int, _opaque: Any) -> None:
        self._post(NetworkChanged(net.name(), _word(NETWORK_LIFECYCLE, event)))

    def drop(self) -> None:
        """Forget a lost connection (its callbacks died with it). Closed on a thread of its own:
        closing asks the daemon, and a hung daemon would hold the engine until keepalive gives up."""
        conn, self._conn = self._conn, None
        self._generation += 1  # whatever that connection still reports is stale now
        if conn is not None:
            threading.Thread(target=_close_quietly, args=(conn,), name="vifscope-libvirt-close", daemon=True).start()

    def close(self) -> None:
        """Deregister callbacks and close (clean shutdown), waiting at most the connect timeout:
        deregistering asks the daemon, and SIGTERM during a libvirtd hang must still exit."""
        conn, callbacks = self._conn, self._callbacks
        self._conn = None
        self._generation += 1
        if conn is not None:
            closing = threading.Thread(target=_deregister_and_close, args=(conn, callbacks), daemon=True)
            closing.start()
            closing.join(self._timeout)

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn`` on the reader's thread, given up after the read timeout: a hung libvirtd
        answers nothing, and keepalive alone would hold the engine ~20 s before closing."""
        import libvirt

        if self._conn is None:
            raise LibvirtReadError(f"{what}: not connected", lost=True)
        fut = self._reader.submit(fn)
        try:
            return fut.result(timeout=self._timeout)
        except TimeoutError as exc:
            raise LibvirtReadError(f"{what}: no answer within {self._timeout:.0f} s", lost=True) from exc
        except SourceStuck as exc:
            raise LibvirtReadError(f"{what}: {exc}", lost=True) from exc
        except libvirt.libvirtError as exc:
            raise LibvirtReadError(f"{what}: {str(exc).strip()}", lost=self._lost()) from exc

    def _lost(self) -> bool:
        import libvirt

        try:
            return not self._conn.isAlive()
        except libvirt.libvirtError:
            return True  # asking failed too: the connection is as good as gone

    def domain_vifs(self, uuid: str) -> tuple[DeclaredVif, ...] | None:
        """The live interfaces of one domain (as ``status`` reads them); None when it is gone."""
        import libvirt

        def read() -> tuple[DeclaredVif, ...] | None:
            try:
                return domain_vifs(self._conn.lookupByUUIDString(uuid))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return None
                raise
            except DomainXmlError as exc:
                raise LibvirtReadError(f"domain {uuid}: {exc}", lost=False) from exc

        result: tuple[DeclaredVif, ...] | None = self._guard(f"domain {uuid}", read)
        return result

    def networks(self) -> tuple[LibvirtNetwork, ...]:
        """Every libvirt network, as ``status`` reads them. One that vanishes between the list
        and its read is left out: the event saying it vanished is already queued."""
        import libvirt

        def read() -> tuple[LibvirtNetwork, ...]:
            out: list[LibvirtNetwork] = []
            for net in sorted(self._conn.listAllNetworks(0), key=lambda n: n.name()):
                with contextlib.suppress(libvirt.libvirtError, NetworkXmlError):
                    out.append(read_network(net))
            return tuple(out)

        result: tuple[LibvirtNetwork, ...] = self._guard("networks", read)
        return result
