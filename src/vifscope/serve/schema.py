"""OpenAPI shapes of the API. They document (and, in the schemathesis test, check) the dicts
the report layer builds; responses are not re-validated through them at run time (5,000
vifs through pydantic would cost more than the snapshot). Extra fields are allowed: the
contract is "add fields, never rename". Request bodies are strict: unknown fields → 422.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDoc(_Open):
    error: str
    hint: str = ""


class SourceErrorDoc(_Open):
    source: str
    error: str
    hint: str


class StatsDoc(_Open):
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


class ObservedDoc(_Open):
    present: bool
    kind: str | None
    admin_up: bool | None
    oper_state: str | None
    carrier: bool | None
    master: str | None
    lower: str | None
    mtu: int | None
    ovs_bridge: str | None
    ovs_iface_id: str | None
    ovs_attached_mac: str | None
    actual: str | None
    uplinks: list[str]
    txqlen: int | None
    stats: StatsDoc | None


class AddressDoc(_Open):
    address: str
    prefix: int | None
    family: Literal["ipv4", "ipv6"]
    source: Literal["agent", "lease", "arp", "eui64"] = Field(
        description="the best source that knew it: guest agent > DHCP lease > ARP/NDP > derived from the MAC"
    )


class VifDoc(_Open):
    domain: str
    domain_uuid: str
    domain_state: str
    index: int
    type: str
    mac: str | None
    model: str | None
    source: str | None
    network: str | None
    bridge: str | None
    expected_attach: str
    expected_lower: str | list[str] | None
    mode: str | None
    target: str | None
    link_state: str
    virtualport: str | None
    status: str
    problems: list[str]
    detail: str
    observed: ObservedDoc
    addresses: list[AddressDoc]


class _Report(_Open):
    host: str
    uri: str
    taken_at: str
    source_errors: list[SourceErrorDoc]


class StatusDoc(_Report):
    """``vifscope status --json``."""

    summary: dict[str, int]
    vifs: list[VifDoc]
    notes: list[str] = Field(description="which guest-address sources were not asked, and why")


class NetworkDoc(_Open):
    name: str
    uuid: str
    mode: str
    forward_mode: str
    kind: str
    bridge: str | None
    forward_devs: list[str]
    active: bool
    autostart: bool | None
    addresses: list[str]
    dhcp_ranges: list[dict[str, str]]
    leases: int | None
    bridge_exists: bool | None
    bridge_up: bool | None
    mtu: int | None


class NetworksDoc(_Report):
    """``vifscope networks --json``."""

    networks: list[NetworkDoc]


class FindingDoc(_Open):
    check: str
    severity: str
    category: str
    domain: str | None
    mac: str | None
    target: str | None
    subject: str | None
    title: str | None
    message: str
    evidence: dict[str, str | int | float | bool | None]
    fix: str | None = Field(description='one paste-safe shell line: the commands, then the note after "#"')
    fix_argv: list[list[str]] = Field(description="the same commands as argv lists, in order")
    fix_chain: Literal["&&", ";"] | None = Field(
        description='"&&": stop at the first failing command; ";": run every one'
    )
    fix_note: str | None = Field(description="what is not a command: an XML change, a placeholder to fill in")
    caused_by: dict[str, str | None] | None = Field(
        default=None, description="the root finding this one follows from (check, domain, mac, subject), or null"
    )


class FindingsDoc(_Report):
    """``vifscope doctor --json``."""

    summary: dict[str, int]
    root_causes: int = Field(default=0, description="findings that follow from no other finding: fix those first")
    findings: list[FindingDoc]
    skipped: list[dict[str, str]]
    isolation: list[dict[str, object]]
    notes: list[str]


class NodeDoc(_Open):
    id: str
    kind: str
    layer: int
    label: str
    name: str
    status: str
    detail: str
    domain: str | None
    mac: str | None


class EdgeDoc(_Open):
    source: str
    target: str
    kind: str
    state: str


class LayoutDoc(_Open):
    width: float
    height: float
    positions: dict[str, dict[str, float]]


class TopologyDoc(_Report):
    """``vifscope graph --format json``: nodes, edges and the page's layout."""

    summary: dict[str, int]
    nodes: list[NodeDoc]
    edges: list[EdgeDoc]
    layout: LayoutDoc


class HealthDoc(_Open):
    status: Literal["ok", "degraded"]
    version: str
    source_errors: list[SourceErrorDoc]


class HostDoc(_Open):
    """``GET /api/v1/host``: the agent's identity for a fleet hub."""

    host_id: str = Field(description="--host-id, else /etc/machine-id, else the host name")
    host_id_source: Literal["flag", "machine-id", "hostname"]
    hostname: str
    version: str = Field(description="vifscope's version")
    uri: str
    libvirt_version: str | None = Field(description="the libvirt library's version")
    mutations: bool
    uptime_s: float | None = Field(description="seconds since the host booted")
    agent_uptime_s: float = Field(description="seconds since this server started")
    status: Literal["ok", "degraded"]
    vifs: int
    source_errors: list[SourceErrorDoc]


class InfoDoc(_Open):
    version: str
    uri: str
    mutations: bool
    interval: float
    fleet: bool = Field(default=False, description="a fleet hub (serve --fleet): /fleet and /api/v1/fleet answer")
    flows: bool = Field(default=False, description="serve --flows: GET /api/v1/vifs/{domain}/{mac}/flows answers")


# Request bodies are strict: {"dry_run": 0} or {"dry_run": "off"} is refused (422), not coerced
# into a boolean by pydantic's lax mode: a request that changes the host says true or false.
class FixRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    dry_run: bool = Field(default=False, description="plan only, change nothing")
    link_down: bool = Field(default=False, description="also set libvirt <link state='up'/> where it is down")


class HealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    dry_run: bool = Field(default=False, description="plan only, change nothing")


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    state: Literal["up", "down"] = Field(description="libvirt <link state=> to set (virsh domif-setlink)")
    dry_run: bool = Field(default=False, description="plan only, change nothing")


class ActionReportDoc(_Open):
    """``vifscope doctor --fix --json``: the plan, what was applied and verified, the audit log."""

    uri: str
    result: str
    run: str | None
    plan: dict[str, list[dict[str, object]]]
    results: list[dict[str, object]]
    after: list[dict[str, object]]
    audit_log: str | None
    audit_errors: list[str]
    restored: bool | None = None
    source_errors: list[SourceErrorDoc]


def _first_vif(operation: str, *params: str) -> dict[str, object]:
    return {"operationId": operation, "parameters": {p: f"$response.body#/vifs/0/{p}" for p in params}}


# OpenAPI links from a vif listing to what can be done to its first vif: a client (and
# schemathesis' stateful phase) follows them with a real domain name and MAC.
VIF_LINKS: dict[str, object] = {
    "VifsOfItsDomain": _first_vif("vifs_of_domain", "domain"),
    "FixIt": _first_vif("fix_vif", "domain", "mac"),
    "HealIt": _first_vif("heal_vif", "domain", "mac"),
    "SetItsLink": _first_vif("set_vif_link", "domain", "mac"),
    "ItsFlows": _first_vif("vif_flows", "domain", "mac"),
}
