"""OpenAPI shape of ``GET /api/v1/fleet`` (documents the dicts ``vifscope.fleet.merge``
builds; extra fields allowed, as in ``serve.schema``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vifscope.serve.schema import SourceErrorDoc


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FleetHostDoc(_Open):
    name: str
    url: str
    labels: dict[str, str]
    answered: bool
    host_id: str | None
    version: str | None
    libvirt_version: str | None
    status: Literal["ok", "degraded", "unreachable"]
    vifs: int
    summary: dict[str, int] = Field(description="its vifs by verdict")
    findings: dict[str, int] = Field(description="its findings by severity, the fleet's own included")
    source_errors: list[SourceErrorDoc]
    seconds: float


class HostErrorDoc(_Open):
    host: str
    error: str


class FleetSummaryDoc(_Open):
    hosts: int
    answered: int
    vifs: dict[str, int]
    findings: dict[str, int]


class FleetDoc(_Open):
    """``fleet status --json`` and ``fleet doctor --json`` in one document."""

    hosts: list[FleetHostDoc]
    vifs: list[dict[str, Any]] = Field(description="status's vif objects plus host")
    findings: list[dict[str, Any]] = Field(description="doctor's findings plus host and hosts")
    host_errors: list[HostErrorDoc]
    summary: FleetSummaryDoc
