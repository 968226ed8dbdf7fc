"""The flow program in the kernel: load it, attach it to taps with TCX, read its map, detach.

Every attachment is a BPF link held by an fd of this process (never pinned): closing it, or the
process dying however it dies, detaches the program. No qdisc is created or deleted, so a tap's
``ingress`` qdisc and its filters (libvirt's QoS) stay as they are and keep running after ours.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import time
from types import TracebackType
from typing import Any

from vifscope.model.flows import FlowCounters, FlowDirection, FlowRecord, FlowSample
from vifscope.sources.flows.libbpf import BPF_TCX_EGRESS, BPF_TCX_INGRESS, BpfUnavailable, LibBpf, hint_for
from vifscope.sources.flows.objpath import program_object

KEY = struct.Struct("<IBBH6s6s16s16sHH")  # struct flow_key in flows.bpf.c
VAL = struct.Struct("<QQQQ")  # struct flow_val
CHUNK = 4096  # entries per batch lookup
DEFAULT_MAX_FLOWS = 65536
_DIR = (FlowDirection.OUT, FlowDirection.IN)  # the program's dir byte


class Decoder:
    """Map entries into FlowRecords. MACs and addresses repeat across flows: each distinct one
    is formatted once. (Building the FlowRecords themselves is most of a read's time: see
    BENCHMARKS.md's flows section.)"""

    def __init__(self) -> None:
        self.macs: dict[bytes, str] = {}
        self.addrs: dict[tuple[int, bytes], str | None] = {}

    def mac(self, raw: bytes) -> str:
        got = self.macs.get(raw)
        if got is None:
            got = self.macs[raw] = raw.hex(":")
        return got

    def addr(self, eth_proto: int, raw: bytes) -> str | None:
        got = self.addrs.get((eth_proto, raw), "")
        if got == "":
            got = self.addrs[(eth_proto, raw)] = _addr(eth_proto, raw)
        return got

    def record(self, key: tuple[Any, ...], val: tuple[int, ...]) -> FlowRecord:
        ifindex, dir_, proto, eth, smac, dmac, src, dst, sport, dport = key
        return FlowRecord(
            ifindex, _DIR[dir_ & 1], eth, proto, self.mac(smac), self.mac(dmac), self.addr(eth, src),
            self.addr(eth, dst), sport, dport, val[0], val[1], val[2],
        )  # fmt: skip


def _addr(eth_proto: int, raw: bytes) -> str | None:
    if eth_proto == 0x0800:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if eth_proto == 0x86DD:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return None


def decode(key: bytes, val: bytes) -> FlowRecord:
    """One entry from its raw key and value (struct flow_key / flow_val)."""
    return Decoder().record(KEY.unpack(key), VAL.unpack(val))


class FlowCollector:
    """The loaded program and its links. Use as a context manager: leaving it detaches all."""

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        self.bpf = LibBpf()
        path, self.program = program_object()
        self.max_flows = max_flows
        self.links: dict[int, tuple[int, int]] = {}  # ifindex -> (ingress link fd, egress link fd)
        self.deleted = 0  # flows removed by read(prune=True): not evictions
        self.started = time.monotonic()
        obj = self.bpf.call("bpf_object__open_file", str(path).encode(), None)
        if not obj:
            code = ctypes.get_errno() or errno.ENOENT
            hint = hint_for(code) if code == errno.ENOENT else "rebuild it: scripts/setup.sh (clang, libbpf-dev)"
            raise BpfUnavailable(self.bpf.why(f"cannot open the BPF object {path}", code), hint)
        self.obj: int | None = obj
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _find(self, kind: str, name: bytes) -> int:
        """A map or program of the object by name; a stale or foreign object has none."""
        found: int | None = self.bpf.call(f"bpf_object__find_{kind}_by_name", self.obj, name)
        if not found:
            raise BpfUnavailable(
                f"the BPF object has no {kind} {name.decode()}", "rebuild it: scripts/setup.sh (clang, libbpf-dev)"
            )
        return found

    def _load(self) -> None:
        flows = self._find("map", b"flows")
        self.bpf.call("bpf_map__set_max_entries", flows, self.max_flows)
        rc = self.bpf.call("bpf_object__load", self.obj)
        if rc < 0:
            raise BpfUnavailable(self.bpf.why("the BPF program did not load", rc), hint_for(rc), rc)
        self.map_fd: int = self.bpf.call("bpf_map__fd", flows)
        self.stats_fd: int = self.bpf.call("bpf_map__fd", self._find("map", b"flow_stats"))
        self.prog_fds = tuple(
            self.bpf.call("bpf_program__fd", self._find("program", name))
            for name in (b"vifscope_fl_in", b"vifscope_fl_eg")
        )

    def attach(self, ifindex: int) -> None:
        """TCX ingress + egress links on ``ifindex``; both or neither."""
        if ifindex in self.links:
            return
        fds: list[int] = []
        for prog_fd, where in zip(self.prog_fds, (BPF_TCX_INGRESS, BPF_TCX_EGRESS), strict=True):
            fd = self.bpf.call("bpf_link_create", prog_fd, ifindex, where, None)
            if fd < 0:
                for done in fds:
                    os.close(done)
                raise BpfUnavailable(self.bpf.why(f"TCX attach to ifindex {ifindex} failed", fd), hint_for(fd), fd)
            fds.append(fd)
        self.links[ifindex] = (fds[0], fds[1])

    def detach(self, ifindex: int) -> None:
        for fd in self.links.pop(ifindex, ()):
            os.close(fd)

    def sync(self, wanted: set[int], budget: float) -> list[BpfUnavailable]:
        """Detach from taps not in ``wanted``, attach to new ones until ``budget`` seconds are
        spent (each TCX attach waits ~10–30 ms in the kernel: the rest waits for the next call).
        Returns the attaches that failed, except ENODEV (a tap that went meanwhile)."""
        for gone in set(self.links) - wanted:
            self.detach(gone)
        deadline = time.monotonic() + budget
        failed: list[BpfUnavailable] = []
        for ifindex in sorted(wanted - self.links.keys()):
            if time.monotonic() > deadline:
                break
            try:
                self.attach(ifindex)
            except BpfUnavailable as exc:
                if exc.code != errno.ENODEV:
                    failed.append(exc)
        return failed

    def close(self) -> None:
        for ifindex in list(self.links):
            self.detach(ifindex)
        if self.obj:
            self.bpf.call("bpf_object__close", self.obj)
            self.obj = None

    def __enter__(self) -> FlowCollector:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def read(self, *, prune: bool = False) -> FlowSample:
        """Every flow in the map now, and the program's counters. ``prune`` deletes the flows
        of taps no longer attached (a long-running collector: they would only take room)."""
        t0 = time.perf_counter()
        keys, vals = self._lookup_all()
        if prune:
            keys, vals = self._prune(keys, vals)
        dec = Decoder()
        records = tuple(map(dec.record, keys, vals))
        read_ms = (time.perf_counter() - t0) * 1000
        counters = self._counters(len(records))
        return FlowSample(records, counters, time.monotonic() - self.started, read_ms, self.program)

    def _prune(
        self, keys: list[tuple[Any, ...]], vals: list[tuple[int, ...]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[int, ...]]]:
        kept_k, kept_v = [], []
        for k, v in zip(keys, vals, strict=True):
            if k[0] in self.links:
                kept_k.append(k)
                kept_v.append(v)
            elif self.bpf.call("bpf_map_delete_elem", self.map_fd, KEY.pack(*k)) == 0:
                self.deleted += 1
        return kept_k, kept_v

    def _lookup_all(self) -> tuple[list[tuple[Any, ...]], list[tuple[int, ...]]]:
        """Every entry, unpacked: (keys, values), in step."""
        keys = ctypes.create_string_buffer(KEY.size * CHUNK)
        vals = ctypes.create_string_buffer(VAL.size * CHUNK)
        token_in, token_out = ctypes.create_string_buffer(8), ctypes.create_string_buffer(8)
        out_k: list[tuple[Any, ...]] = []
        out_v: list[tuple[int, ...]] = []
        first = True
        while True:
            count = ctypes.c_uint32(CHUNK)
            rc = self.bpf.call(
                "bpf_map_lookup_batch", self.map_fd, None if first else token_in, token_out, keys, vals,
                ctypes.byref(count), None,
            )  # fmt: skip
            n = count.value
            out_k.extend(KEY.iter_unpack(keys.raw[: n * KEY.size]))
            out_v.extend(VAL.iter_unpack(vals.raw[: n * VAL.size]))
            if rc == -errno.ENOENT:  # the last batch (possibly with entries, taken above)
                return out_k, out_v
            if rc < 0:
                raise BpfUnavailable(self.bpf.why("reading the flow map failed", rc), hint_for(rc))
            ctypes.memmove(token_in, token_out, 8)
            first = False

    def _counters(self, entries: int) -> FlowCounters:
        ncpu = max(1, self.bpf.call("libbpf_num_possible_cpus"))
        buf = (ctypes.c_uint64 * ncpu)()
        sums: list[int] = []
        for i in range(3):
            key = ctypes.c_uint32(i)
            rc = self.bpf.call("bpf_map_lookup_elem", self.stats_fd, ctypes.byref(key), buf)
            sums.append(sum(buf) if rc == 0 else 0)
        return FlowCounters(sums[0], sums[1], sums[2], entries, self.max_flows, self.deleted)
