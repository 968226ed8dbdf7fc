"""Pure data model (frozen dataclasses + enums). ``core``: declared vifs, kernel links,
OVS ports, libvirt networks, the snapshot and bindings. Import names from here."""

from vifscope.model.core import (
    DeclaredVif,
    DhcpRange,
    DomainState,
    Expectation,
    HostSnapshot,
    LibvirtNetwork,
    LinkStats,
    ObservedLink,
    OvsPort,
    Problem,
    SourceError,
    VifBinding,
    VifStatus,
)
from vifscope.model.finding import Evidence, Finding, Severity

__all__ = [
    "DeclaredVif",
    "DhcpRange",
    "DomainState",
    "Evidence",
    "Expectation",
    "Finding",
    "HostSnapshot",
    "LibvirtNetwork",
    "LinkStats",
    "ObservedLink",
    "OvsPort",
    "Problem",
    "Severity",
    "SourceError",
    "VifBinding",
    "VifStatus",
]
