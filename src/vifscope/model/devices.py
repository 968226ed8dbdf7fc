"""What ``vifscope attach`` / ``detach`` need to know about one domain, and what libvirt
answered when a device was hot-plugged or unplugged. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vifscope.model.core import DeclaredVif, DomainState

# <os><type arch=> values whose PCI hot-plug goes through ACPI (i440fx ``pc``; q35 too by default).
ACPI_HOTPLUG_ARCHES = frozenset({"x86_64", "i686"})


@dataclass(frozen=True)
class DomainView:
    """One domain: its state, whether it has a persistent definition, the ACPI feature its
    guest needs for PCI hot-plug, and its interfaces in the live and the persistent XML."""

    name: str
    uuid: str
    state: DomainState
    persistent: bool
    acpi: bool  # <features><acpi/>
    arch: str | None  # <os><type arch=>
    live: tuple[DeclaredVif, ...]  # XMLDesc(0): the running definition (= config when shut off)
    config: tuple[DeclaredVif, ...]  # XMLDesc(INACTIVE): what the next boot gets

    @property
    def running(self) -> bool:
        return self.state.has_taps

    @property
    def needs_acpi(self) -> bool:
        """x86 guests see a hot-plugged PCI NIC through ACPI; without <acpi/> QEMU refuses
        ("Bus 'pci.0' does not support hotplugging"). Other arches use native PCIe hot-plug."""
        return self.arch is None or self.arch in ACPI_HOTPLUG_ARCHES


class RemovalStatus(StrEnum):
    """How a detach ended, as libvirt reported it."""

    REMOVED = "removed"  # VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED (or gone from the live XML)
    FAILED = "failed"  # VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED: the guest refused
    TIMEOUT = "timeout"  # neither within the wait: the guest has not released it (yet)
    CONFIG_ONLY = "config-only"  # only the persistent definition changed: synchronous, no event


@dataclass(frozen=True)
class Removal:
    status: RemovalStatus
    alias: str | None = None
    waited_s: float = 0.0
    via: str = ""  # "event" (libvirt's), "xml" (gone from the live XML first), "" (no wait)

    @property
    def done(self) -> bool:
        return self.status in (RemovalStatus.REMOVED, RemovalStatus.CONFIG_ONLY)
