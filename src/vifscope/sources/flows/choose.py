"""Which collector ``vifscope flows`` runs: the BPF program (exact, in the kernel), or where it
cannot load or attach, AF_PACKET sampling (sources/flows/packet.py). Both have one shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from vifscope.model.flows import FlowSample
from vifscope.sources.flows.libbpf import BpfUnavailable

COLLECTORS = ("auto", "bpf", "packet")


class Collector(Protocol):
    """What the fronts use of a collector (FlowCollector and PacketCollector)."""

    max_flows: int

    @property
    def links(self) -> Mapping[int, object]: ...  # ifindex -> what holds it (read-only use)

    def attach(self, ifindex: int) -> None: ...

    def detach(self, ifindex: int) -> None: ...

    def read(self, *, prune: bool = False) -> FlowSample: ...

    def close(self) -> None: ...


def make(kind: str, max_flows: int, sample: int) -> Collector:
    if kind == "packet":
        from vifscope.sources.flows.packet import PacketCollector

        return PacketCollector(max_flows, sample)
    from vifscope.sources.flows.collector import FlowCollector

    return FlowCollector(max_flows)


def open_attached(kind: str, max_flows: int, sample: int, attach: Callable[[Collector], None]) -> tuple[Collector, str]:
    """The first collector of ``kind`` (auto: bpf, then packet) that loads and on which
    ``attach`` succeeds; returns it with why the BPF one was passed over ("" when it was not).
    The last failure is raised (BpfUnavailable)."""
    kinds = ["bpf", "packet"] if kind == "auto" else [kind]
    why, hint = "", ""
    for k in kinds:
        try:
            return _opened(k, max_flows, sample, attach), why
        except BpfUnavailable as exc:
            if k == kinds[-1]:
                if why:  # auto: both failed; the BPF program's reason and hint come first
                    raise BpfUnavailable(f"{why}; fallback: {exc.reason}", f"{hint}; fallback: {exc.hint}") from exc
                raise
            why, hint = exc.reason, exc.hint
    raise AssertionError("unreachable: kinds is never empty")


def _opened(kind: str, max_flows: int, sample: int, attach: Callable[[Collector], None]) -> Collector:
    col = make(kind, max_flows, sample)
    try:
        attach(col)
    except BaseException:
        col.close()
        raise
    return col
