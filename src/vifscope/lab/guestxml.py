"""The libvirt domain XML of a lab guest: direct kernel boot of the cached guest image
(``image``), the caller's NICs, a serial console, nothing else."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from vifscope.lab.image import GuestImage

# What libvirt does when the guest powers off, reboots or crashes.
ON_EVENTS = (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy"))


def guest_domain_xml(
    name: str,
    image: GuestImage,
    nics_xml: list[str],
    *,
    memory_mib: int = 96,
    console_log: Path | None = None,
    cmdline_extra: str = "",
) -> str:
    """Return a complete libvirt domain XML that boots the guest image directly.

    Why these choices: type='qemu' because KVM does not work here; acpi/apic because NIC
    hotplug fails without them; no disk, graphics or balloon to keep TCG boots at a few
    seconds. nics_xml are complete <interface> elements (with <model type='virtio'/>).
    The guest's hostname defaults to name; vs.* options go in cmdline_extra.
    """
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(domain, "vcpu").text = "1"
    domain.append(_os_element(name, image, cmdline_extra))
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(domain, "clock", offset="utc")
    for event, action in ON_EVENTS:
        ET.SubElement(domain, event).text = action
    domain.append(_devices_element(nics_xml, console_log))
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def _os_element(name: str, image: GuestImage, cmdline_extra: str) -> ET.Element:
    """Return <os> for direct kernel boot; the cmdline carries the guest's vs.* settings."""
    os_el = ET.Element("os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "kernel").text = str(image.kernel)
    ET.SubElement(os_el, "initrd").text = str(image.initrd)
    words = ["console=ttyS0", "quiet"]
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}", name):
        words.append(f"vs.name={name}")  # a later vs.name= in cmdline_extra wins
    words += cmdline_extra.split()
    ET.SubElement(os_el, "cmdline").text = " ".join(words)
    return os_el


def _devices_element(nics_xml: list[str], console_log: Path | None) -> ET.Element:
    """Return <devices>: the caller's NICs, a serial console, and nothing else worth booting."""
    devices = ET.Element("devices")
    for nic in nics_xml:
        devices.append(ET.fromstring(nic))
    if console_log is None:
        serial = ET.SubElement(devices, "serial", type="pty")
    else:
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=str(console_log.absolute()))
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(devices, "controller", type="usb", model="none")
    ET.SubElement(devices, "memballoon", model="none")
    return devices
