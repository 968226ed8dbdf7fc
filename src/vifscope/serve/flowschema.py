"""OpenAPI shape of ``GET /api/v1/vifs/{domain}/{mac}/flows``: ``vifscope flows --json``'s
document (``report.flows``) for one vif, plus the window it covers. Extra fields allowed, as
in ``serve.schema``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vifscope.serve.schema import SourceErrorDoc


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FlowSideDoc(_Open):
    bytes: int = Field(description="L2 frame bytes (headers once per GSO segment)")
    packets: int = Field(description="segments")
    payload_bytes: int = Field(description="what follows the TCP/UDP/ICMP header (what iperf3 counts)")
    bps: float = Field(description="bits per second over the window")


class PeerVifDoc(_Open):
    host: str | None = Field(description="the fleet host holding the peer vif; null: this host")
    domain: str
    mac: str


class TalkerDoc(_Open):
    key: str = Field(description="the peer's address (its MAC for non-IP), 'tcp/5201', 'tcp', or one flow")
    peer: str | None = Field(description="the peer's domain when it is a vif on this host")
    peer_vif: PeerVifDoc | None = Field(default=None, description="the vif the peer was named after")
    peer_candidates: list[PeerVifDoc] = Field(
        default_factory=list, description="vifs claiming the peer's address or MAC when it could not be named"
    )
    flows: int
    out: FlowSideDoc = Field(description="what the guest sent to this peer")
    in_: FlowSideDoc = Field(alias="in", description="what the guest received from this peer")


class VifTotalDoc(_Open):
    bytes: int
    bps: float


class VifFlowsDoc(_Open):
    domain: str
    mac: str | None
    tap: str
    ifindex: int
    out: VifTotalDoc
    in_: VifTotalDoc = Field(alias="in")
    talkers: list[TalkerDoc] = Field(description="top N, largest first")
    other: TalkerDoc | None = Field(description="the rest, summed")


class FlowCountersDoc(_Open):
    packets: int
    inserted: int
    failed: int
    entries: int
    max_entries: int
    evicted: int


class FlowsDoc(_Open):
    schema_: Literal["vifscope.flows/1"] = Field(alias="schema")
    seconds: float | None = Field(
        None,
        description="how long the answer covers: the rolling window, between window and 1.5 × window seconds "
        "plus one read of the map (less while the server is younger than the window)",
    )
    window: float | None = Field(None, description="the server's --flows-window, in seconds")
    attached: bool | None = Field(None, description="false: its tap has no flow program (not running, or not yet)")
    by: Literal["peer", "port", "proto", "flow"] | None = None
    top: int | None = None
    program: str | None = None
    read_ms: float | None = None
    counters: FlowCountersDoc | None = Field(None, description="the whole map's, since serve loaded it")
    vifs: list[VifFlowsDoc] = Field(description="the vif, when its tap is attached; empty otherwise")
    source_errors: list[SourceErrorDoc] = Field(
        description="a 'bpf' entry says why there are no flows (or an attach failed); a 'libvirt' or "
        "'netlink' one that the last pass could not see the vifs and kept the links as they were"
    )
