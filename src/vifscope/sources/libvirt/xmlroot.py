"""The root element of one libvirt XML document, or the parser's typed error. Pure.

Every libvirt XML reader (domain, network, nwfilter) starts the same way: well-formed, and the
root is the element it reads. Each raises its own error class so callers can tell which
document was bad.

Entity declarations are refused: libvirt never writes a DOCTYPE, and expat expands internal
entities (expat 2.4+ stops a billion-laughs document only once it has amplified 8 MiB; an
external entity would name a file). vifscope runs as root, so such a document is refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat


class _EntityDeclared(Exception):
    """Raised from inside expat's callback to stop at the first entity declaration."""


class _Refused(ValueError):
    """Well-formed, perhaps, but not a document vifscope reads (entities declared)."""


def _refuse_entities(text: str) -> None:
    """Stop at the first <!ENTITY (only run when the text has a DOCTYPE at all: libvirt's never do)."""

    def declared(*_args: object) -> None:
        raise _EntityDeclared

    parser = expat.ParserCreate()
    parser.EntityDeclHandler = declared
    parser.UnparsedEntityDeclHandler = declared
    try:
        parser.Parse(text, True)
    except expat.ExpatError:
        return  # not well-formed: ET reports it below, with the same message as ever
    except _EntityDeclared:
        raise _Refused("declares an XML entity (libvirt XML has no DOCTYPE)") from None


def xml_root(text: str, tag: str, error: type[ValueError]) -> ET.Element:
    """``<tag>`` parsed from ``text``; ``error`` when it is not well-formed, declares entities,
    or has another root."""
    try:
        if "<!DOCTYPE" in text:
            _refuse_entities(text)
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise error(f"not well-formed XML: {exc}") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate: the text cannot be UTF-8, as XML is read
        raise error(f"not well-formed XML: {exc.reason} at character {exc.start}") from exc
    except _Refused as exc:
        raise error(f"refused XML: {exc}") from exc
    if root.tag != tag:
        raise error(f"root element is <{root.tag}>, expected <{tag}>")
    return root
