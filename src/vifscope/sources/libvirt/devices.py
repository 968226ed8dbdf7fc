"""Hot-plug and unplug of interfaces through libvirt: the only read-write libvirt in vifscope.

Everything else reads over ``openReadOnly``; ``vifscope attach`` / ``detach`` open a
read-write connection here, for one call each, and close it. A detach of a running guest's
NIC is asynchronous in libvirt: ``detachDeviceFlags`` asks QEMU to unplug, waits ~5 s for
the guest to let go, and returns either way. The device is gone only when libvirt emits
VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED (or DEVICE_REMOVAL_FAILED when the guest refused), so
the callbacks are registered before the call and the answer is awaited here.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vifscope.model import DomainState
from vifscope.model.devices import DomainView, Removal, RemovalStatus
from vifscope.sources.libvirt.conn import LibvirtUnavailable, connect, domain_state, hint_for
from vifscope.sources.libvirt.domxml import DomainXmlError, parse_domain_xml
from vifscope.sources.libvirt.eventloop import EventLoop
from vifscope.sources.libvirt.xmlroot import xml_root

# How often a detach that has not seen its event looks at the live XML: an event that was
# emitted while the connection was being set up would otherwise be waited for in vain.
POLL_S = 0.25


class DeviceError(RuntimeError):
    """libvirt refused or failed a device change; the message is libvirt's, on one line."""


class NoSuchDomain(LookupError):
    """The domain is not defined on this libvirt."""


def _flags(live: bool, config: bool) -> int:
    import libvirt

    return (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0) | (libvirt.VIR_DOMAIN_AFFECT_CONFIG if config else 0)


def _features(xml: str) -> tuple[bool, str | None]:
    """(``<features><acpi/>`` present, ``<os><type arch=>``) of a domain XML."""
    root = xml_root(xml, "domain", DomainXmlError)
    os_type = root.find("os/type")
    return root.find("features/acpi") is not None, (os_type.get("arch") if os_type is not None else None)


def domain_view(dom: Any) -> DomainView:
    """A DomainView of a virDomain (read-only calls only)."""
    import libvirt

    name, uuid = str(dom.name()), str(dom.UUIDString())
    state = domain_state(dom.state()[0])
    persistent = bool(dom.isPersistent())
    live_xml = str(dom.XMLDesc(0))
    config_xml = str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) if persistent else None
    acpi, arch = _features(config_xml or live_xml)
    live = parse_domain_xml(live_xml, state, name=name, uuid=uuid) if state.has_taps else ()
    config = parse_domain_xml(config_xml, DomainState.SHUTOFF, name=name, uuid=uuid) if config_xml else ()
    return DomainView(name, uuid, state, persistent, acpi, arch, live, config)


def read_domain(uri: str, name: str) -> DomainView:
    """The domain ``name`` (or UUID) as attach/detach plan against. NoSuchDomain if undefined;
    LibvirtUnavailable when libvirt cannot be asked."""
    import libvirt

    with connect(uri) as conn:
        try:
            return domain_view(_lookup(conn, name))
        except libvirt.libvirtError as exc:
            raise LibvirtUnavailable(f"libvirt at {uri}: {exc}", hint_for(uri, str(exc))) from exc


def _lookup(conn: Any, name: str) -> Any:
    import libvirt

    for lookup in (conn.lookupByName, conn.lookupByUUIDString):
        try:
            return lookup(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() not in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG):
                raise
    raise NoSuchDomain(name)


@contextmanager
def read_write(uri: str) -> Iterator[Any]:
    """A read-write connection (with the event loop running, for callbacks), closed on exit."""
    import libvirt

    EventLoop.ensure()  # before open: a connection only delivers events registered after the loop
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        msg = str(exc).strip()
        raise LibvirtUnavailable(f"cannot open a read-write connection to {uri}: {msg}", hint_for(uri, msg)) from exc
    try:
        yield conn
    finally:
        conn.close()


def attach_interface(uri: str, domain: str, xml: str, *, live: bool, config: bool) -> None:
    """``virDomainAttachDeviceFlags``: synchronous (QEMU's device_add has returned). DeviceError."""
    import libvirt

    with read_write(uri) as conn:
        try:
            _lookup(conn, domain).attachDeviceFlags(xml, _flags(live, config))
        except libvirt.libvirtError as exc:
            raise DeviceError(str(exc).strip().splitlines()[0]) from exc


class _Awaited:
    """What the event callbacks saw for one device alias (set from libvirt's loop thread)."""

    def __init__(self, alias: str | None) -> None:
        self.alias = alias
        self.status: RemovalStatus | None = None
        self.done = threading.Event()

    def seen(self, status: RemovalStatus, alias: str) -> None:
        if self.alias is None or alias == self.alias:
            self.status = status
            self.done.set()


def _live_macs(dom: Any) -> set[str]:
    root = xml_root(str(dom.XMLDesc(0)), "domain", DomainXmlError)
    return {(m.get("address") or "").lower() for m in root.iterfind("devices/interface/mac")}


def _await(dom: Any, seen: _Awaited, mac: str, timeout: float) -> Removal:
    started = time.monotonic()
    while not seen.done.wait(POLL_S):
        if mac not in _live_macs(dom):
            return Removal(RemovalStatus.REMOVED, seen.alias, time.monotonic() - started, "xml")
        if time.monotonic() - started >= timeout:
            return Removal(RemovalStatus.TIMEOUT, seen.alias, time.monotonic() - started)
    return Removal(seen.status or RemovalStatus.REMOVED, seen.alias, time.monotonic() - started, "event")


def detach_interface(
    uri: str, domain: str, xml: str, *, mac: str, alias: str | None, live: bool, config: bool, timeout: float
) -> Removal:
    """``virDomainDetachDeviceFlags``, then (live) the DEVICE_REMOVED / DEVICE_REMOVAL_FAILED
    event for ``alias`` within ``timeout`` s. DeviceError when libvirt refuses the request."""
    import libvirt

    with read_write(uri) as conn:
        try:
            dom = _lookup(conn, domain)
            if not live:
                dom.detachDeviceFlags(xml, _flags(live, config))
                return Removal(RemovalStatus.CONFIG_ONLY, alias)
            seen = _Awaited(alias)
            ids = [
                conn.domainEventRegisterAny(
                    dom, event, lambda _c, _d, dev, _o, st=status: seen.seen(st, str(dev)), None
                )
                for event, status in (
                    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, RemovalStatus.REMOVED),
                    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED, RemovalStatus.FAILED),
                )
            ]
            try:
                dom.detachDeviceFlags(xml, _flags(live, config))
                return _await(dom, seen, mac.lower(), timeout)
            finally:
                for cb in ids:
                    conn.domainEventDeregisterAny(cb)
        except libvirt.libvirtError as exc:
            raise DeviceError(str(exc).strip().splitlines()[0]) from exc


def interface_text(elem: ET.Element) -> str:
    """One line of XML, as the audit log records what was sent."""
    return ET.tostring(elem, encoding="unicode")
