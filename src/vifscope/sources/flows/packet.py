"""The fallback collector where the BPF program cannot load or attach: AF_PACKET sampling.

One AF_PACKET socket per tap, bound to its ifindex, with a classic BPF socket filter that keeps
1 frame in N (``ld rand``: the kernel's per-packet random number, so the choice is independent
of the traffic) and only its first ``SNAPLEN`` bytes — the headers. A reader thread drains the
sockets and counts each sampled frame ×N into the same FlowRecords the BPF program makes, so
at N=1 the counts are exact and at N>1 they are unbiased estimates (1:N).

- Direction from ``sll_pkttype``: PACKET_OUTGOING is the host sending into the tap, i.e. the
  guest receiving (IN); anything else is what the guest sent (OUT) — the BPF program's convention.
- The frame's true length comes from PACKET_AUXDATA (``tp_len``: before the snap), its GSO
  segment size from PACKET_VNET_HDR, so ``bytes``/``packets`` match the BPF program's definition
  (headers once per segment, segments counted).
- Nothing is attached to the tap: the sockets close with the process, however it ends.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import socket
import struct
import threading
import time
from types import TracebackType

from vifscope.model.flows import FlowCounters, FlowDirection, FlowSample
from vifscope.sources.flows.decode import Formatter, RawKey, counts, raw_key
from vifscope.sources.flows.libbpf import BpfUnavailable

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SKF_AD_RANDOM = -0x1000 + 56  # SKF_AD_OFF + SKF_AD_RANDOM: a random u32 per packet
SNAPLEN = 160  # Ethernet 14 + IPv4 with options 60 + TCP with options 60, rounded up
VNET = struct.Struct("<BBHHHH")  # struct virtio_net_hdr
AUX = struct.Struct("<IIIHHHH")  # struct tpacket_auxdata
RCVBUF = 4 << 20
DEFAULT_SAMPLE = 1
BATCH = 64  # frames read between two takes of the table's lock
Flow = tuple[int, bool, RawKey]  # (ifindex, the host sent it: the guest's IN, the frame's key)
_DIR = {False: FlowDirection.OUT, True: FlowDirection.IN}


class PacketUnavailable(BpfUnavailable):
    """AF_PACKET sockets cannot be opened here (no CAP_NET_RAW)."""


def sample_filter(n: int, snaplen: int = SNAPLEN) -> bytes:
    """The classic BPF program: accept ``snaplen`` bytes of 1 frame in ``n``, drop the rest."""
    ins = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
    if n <= 1:
        return ins.pack(0x06, 0, 0, snaplen)  # ret #snaplen
    return b"".join(
        (
            ins.pack(0x20, 0, 0, SKF_AD_RANDOM & 0xFFFFFFFF),  # ld rand
            ins.pack(0x94, 0, 0, n),  # mod #n
            ins.pack(0x15, 0, 1, 0),  # jeq #0: accept, else drop
            ins.pack(0x06, 0, 0, snaplen),  # ret #snaplen
            ins.pack(0x06, 0, 0, 0),  # ret #0
        )
    )


def _attach_filter(sock: socket.socket, prog: bytes) -> None:
    """SO_ATTACH_FILTER takes a struct sock_fprog {len, *filter}: the pointer is to our buffer."""
    import ctypes

    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(prog) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _new_socket() -> socket.socket:
    """Protocol 0: the socket receives nothing until bind names the tap and ETH_P_ALL."""
    return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)


HINTS = {
    errno.EPERM: "run as root (CAP_NET_RAW)",
    errno.EACCES: "run as root (CAP_NET_RAW)",
    errno.EMFILE: "one socket a tap: raise the open-files limit (ulimit -n, LimitNOFILE=) above the tap count",
    errno.ENFILE: "the host is out of file handles: raise fs.file-max",
    errno.EAFNOSUPPORT: "this kernel has no AF_PACKET (CONFIG_PACKET): load af_packet or use --collector bpf",
}


def _unavailable(what: str, exc: OSError) -> PacketUnavailable:
    code = exc.errno or errno.EIO
    return PacketUnavailable(
        f"{what}: {errno.errorcode.get(code, str(code))} ({os.strerror(code)})", HINTS.get(code, ""), code
    )


def raise_nofile() -> None:
    """One socket a tap: lift the soft open-files limit to the hard one (a host with more taps
    than the default 1024 would otherwise fail with EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(OSError, ValueError):  # a sandbox may refuse: EMFILE says so later
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_tap_socket(ifindex: int, n: int) -> socket.socket:
    try:
        sock = _new_socket()
    except OSError as exc:  # EPERM, EMFILE, EAFNOSUPPORT...: the fallback is unavailable (exit 3)
        raise _unavailable("AF_PACKET socket", exc) from exc
    try:
        # The filter goes on before bind: no unsampled frame is ever queued.
        _attach_filter(sock, sample_filter(n))
        for opt in (PACKET_AUXDATA, PACKET_VNET_HDR):
            sock.setsockopt(SOL_PACKET, opt, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except PermissionError:  # without CAP_NET_ADMIN: the default (rmem_max-capped) buffer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        if ifindex:  # 0: the constructor's probe, never bound
            sock.bind(_by_index(ifindex))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise _unavailable(f"AF_PACKET on ifindex {ifindex}", exc) from exc
    return sock


def _by_index(ifindex: int) -> tuple[str, int]:
    """Python binds AF_PACKET by name; a tap gone meanwhile is ENODEV like a failed TCX attach."""
    try:
        return (socket.if_indextoname(ifindex), ETH_P_ALL)
    except OSError as exc:
        raise OSError(errno.ENODEV, f"no interface with ifindex {ifindex}") from exc


class PacketCollector:
    """AF_PACKET sockets on taps and the thread reading them. A context manager, like
    FlowCollector: leaving it closes every socket and stops the thread."""

    kind = "packet"

    def __init__(self, max_flows: int = 65536, sample: int = DEFAULT_SAMPLE) -> None:
        raise_nofile()
        open_tap_socket(0, 1).close()  # fail here, not at the first tap: no CAP_NET_RAW, no collector
        self.max_flows = max_flows
        self.sample = max(1, sample)
        self.program = f"packet 1:{self.sample}"
        self.links: dict[int, socket.socket] = {}
        self.started = time.monotonic()
        self.flows: dict[Flow, list[int]] = {}  # -> [bytes, packets, payload] (scaled ×N)
        self.frames = self.inserted = self.failed = self.dropped = self.deleted = 0
        self.version = 0  # bumped by attach / detach: the reader thread re-reads links
        self.lock = threading.Lock()
        self.epoll = select.epoll()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="vifscope-packet", daemon=True)
        self.thread.start()

    def attach(self, ifindex: int) -> None:
        if ifindex in self.links:
            return
        sock = open_tap_socket(ifindex, self.sample)
        with self.lock:
            self.links[ifindex] = sock
            self.version += 1
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def detach(self, ifindex: int) -> None:
        with self.lock:
            sock = self.links.pop(ifindex, None)
            self.version += 1
        if sock is not None:
            self.epoll.unregister(sock.fileno())
            sock.close()

    def sync(self, wanted: set[int], budget: float) -> list[BpfUnavailable]:
        for gone in set(self.links) - wanted:
            self.detach(gone)
        failed: list[BpfUnavailable] = []
        for ifindex in sorted(wanted - self.links.keys()):
            try:
                self.attach(ifindex)
            except BpfUnavailable as exc:
                if exc.code != errno.ENODEV:
                    failed.append(exc)
        return failed

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for ifindex in list(self.links):
            self.detach(ifindex)
        self.epoll.close()

    def __enter__(self) -> PacketCollector:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _run(self) -> None:
        seen, socks, by_fd = -1, dict[int, socket.socket](), dict[int, int]()
        while not self.stop.is_set():
            try:
                ready = self.epoll.poll(0.1)
            except (OSError, ValueError):  # closed under us: close() is ending the thread
                return
            if seen != self.version:  # attached or detached meanwhile
                with self.lock:
                    seen, socks = self.version, dict(self.links)
                by_fd = {s.fileno(): i for i, s in socks.items()}
            for fd, _ev in ready:
                ifindex = by_fd.get(fd)
                if ifindex is not None:
                    self._drain(ifindex, socks[ifindex])

    def _drain(self, ifindex: int, sock: socket.socket) -> None:
        """Up to BATCH frames queued on ``sock``, counted ×N under one take of the lock. One
        batch per ready socket per poll (epoll is level-triggered): a busy tap cannot starve
        the others."""
        batch: list[tuple[Flow, tuple[int, int, int]]] = []
        failed = self._recv(ifindex, sock, batch)
        with self.lock:
            self.failed += failed
            self._count(batch)

    def _recv(self, ifindex: int, sock: socket.socket, batch: list[tuple[Flow, tuple[int, int, int]]]) -> int:
        """Up to BATCH frames into ``batch``; returns the frames read that could not be recorded."""
        failed = 0
        for _ in range(BATCH):
            try:
                data, anc, _flags, addr = sock.recvmsg(VNET.size + SNAPLEN, 64)
            except BlockingIOError:
                return failed
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EBADF: detached meanwhile
                    return failed
                failed += 1  # a GSO type virtio_net_hdr cannot express: the frame is gone
                continue
            got = raw_key(data[VNET.size :])
            if got is not None:
                length = _orig_len(anc, len(data) - VNET.size)
                flow = (ifindex, addr[2] == PACKET_OUTGOING, got[0])
                batch.append((flow, counts(length, got[1], VNET.unpack_from(data)[3])))
        return failed

    def _count(self, batch: list[tuple[Flow, tuple[int, int, int]]]) -> None:
        """Under the lock. A batch read before its tap was detached (and its flows pruned) is
        dropped with it: counting it would re-insert flows of a tap no longer watched."""
        n = self.sample
        for flow, (nbytes, packets, payload) in batch:
            if flow[0] not in self.links:
                continue
            self.frames += n  # an estimate ×N like the flows' counts: the BPF program's "packets seen"
            row = self.flows.get(flow)
            if row is None:
                self._insert(flow, [nbytes * n, packets * n, payload * n])
            else:
                row[0] += nbytes * n
                row[1] += packets * n
                row[2] += payload * n

    def _insert(self, key: Flow, row: list[int]) -> None:
        """A new flow; when the table is full the oldest one goes (FIFO: counted as evicted)."""
        if len(self.flows) >= self.max_flows:
            del self.flows[next(iter(self.flows))]
        self.flows[key] = row
        self.inserted += 1

    def read(self, *, prune: bool = False) -> FlowSample:
        t0 = time.perf_counter()
        with self.lock:
            if prune:
                for key in [k for k in self.flows if k[0] not in self.links]:
                    del self.flows[key]
                    self.deleted += 1
            fmt = Formatter()
            records = tuple(fmt.record(i, _DIR[inbound], key, row) for (i, inbound, key), row in self.flows.items())
            self.dropped += sum(_stats(s)[1] for s in self.links.values())
            counters = FlowCounters(
                self.frames, self.inserted, self.failed, len(records), self.max_flows, self.deleted, self.dropped
            )
        read_ms = (time.perf_counter() - t0) * 1000
        return FlowSample(
            records, counters, time.monotonic() - self.started, read_ms, self.program, self.kind, self.sample
        )


def _orig_len(anc: list[tuple[int, int, bytes]], fallback: int) -> int:
    for level, kind, blob in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(blob) >= AUX.size:
            return int(AUX.unpack_from(blob)[1])  # tp_len
    return fallback


def _stats(sock: socket.socket) -> tuple[int, int]:
    """(frames queued, frames dropped: the socket buffer was full) since the last call (the
    kernel resets them on read): dropped samples are lost counts."""
    got = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    packets, drops = struct.unpack("II", got)
    return packets, drops
