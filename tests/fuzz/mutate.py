"""Structure-aware mutators for the fuzz targets: libvirt XML (element tree and raw text), JSON
documents as the commands print them, rtnetlink datagrams, and line-oriented text.

Every mutator takes a ``random.Random`` and returns a new input; nothing here knows what a
parser does with it. Deterministic for a given seed, so a failure is replayed by its seed.
"""

from __future__ import annotations

import copy
import json
import random
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

# Values that break naive readers: empty, signs, overflow, other bases, non-ASCII digits,
# whitespace, markup characters, non-BMP text, very long.
STRINGS = (
    "", " ", "0", "-1", "1e3", "0x10", "99999999999999999999999", "٣", " 5 ", "yes", "no", "NaN",
    "a\tb", "a\nb", "\"'<>&", "ñämé€", "😀" * 3, "x" * 300, "../../etc/passwd", "%s%n", "{}", "[]",
    "vnet0", "br0", "52:54:00:00:00:01", "52:54:00:00:00", "10.0.0.1/33", "::1", "bridge", "network",
    "direct", "ethernet", "hostdev", "openvswitch", "network", "default", "forwarding", "UP",
)  # fmt: skip
# Tags and attribute names the libvirt readers look at, so insertions reach their code paths.
XML_TAGS = (
    "interface", "source", "target", "mac", "model", "driver", "mtu", "link", "virtualport",
    "parameters", "port", "bandwidth", "filterref", "alias", "vcpu", "name", "uuid", "devices",
    "forward", "ip", "dhcp", "range", "bridge", "pf", "address", "owner", "portdev", "domain",
)  # fmt: skip
XML_ATTRS = (
    "type", "address", "dev", "bridge", "network", "mode", "size", "queues", "name", "filter",
    "isolated", "trustGuestRxFilters", "interfaceid", "state", "portgroup", "path", "switchid",
    "prefix", "netmask", "start", "end", "domain", "bus", "slot", "function",
)  # fmt: skip
JSON_KEYS = (
    "ifname", "ifindex", "flags", "mtu", "address", "master", "link", "link_index", "link_netnsid",
    "linkinfo", "info_kind", "info_data", "info_slave_kind", "info_slave_data", "operstate", "stats64",
    "rx", "tx", "bytes", "packets", "txqlen", "qdisc", "promiscuity", "state", "isolated", "mode",
    "stp_state", "forward_delay", "dev", "kind", "handle", "root", "dst", "lladdr", "addr_info",
    "local", "prefixlen", "family", "nftables", "chain", "rule", "table", "hook", "policy", "expr",
    "match", "left", "right", "meta", "key", "payload", "field", "prefix", "addr", "len", "xt", "name",
    "masquerade", "snat", "accept", "op", "headings", "data", "mac", "ipaddr", "hostname", "expirytime",
)  # fmt: skip


def huge(rng: random.Random) -> str:
    return rng.choice("aZ9-.:") * rng.choice((1000, 10_000, 100_000))


def scalar(rng: random.Random) -> Any:
    """An interesting JSON scalar (or an empty container)."""
    pick = rng.randrange(12)
    if pick < 5:
        return rng.choice(STRINGS)
    table: tuple[Any, ...] = (None, True, 0, -1, 2**64, 1.5, [], {})
    return huge(rng) if pick == 11 else table[rng.randrange(len(table))] if pick < 11 else None


# --- XML -------------------------------------------------------------------------------------


def _elements(root: ET.Element) -> list[tuple[ET.Element | None, ET.Element]]:
    out: list[tuple[ET.Element | None, ET.Element]] = [(None, root)]
    out.extend((parent, child) for parent in root.iter() for child in parent)
    return out


def _drop(rng: random.Random, root: ET.Element) -> None:
    parent, child = rng.choice(_elements(root))
    if parent is not None:
        parent.remove(child)


def _duplicate(rng: random.Random, root: ET.Element) -> None:
    parent, child = rng.choice(_elements(root))
    if parent is not None:
        parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(child))


def _reorder(rng: random.Random, root: ET.Element) -> None:
    _, elem = rng.choice(_elements(root))
    kids = list(elem)
    rng.shuffle(kids)
    elem[:] = kids


def _attr(rng: random.Random, root: ET.Element) -> None:
    _, elem = rng.choice(_elements(root))
    if elem.attrib and rng.random() < 0.3:
        del elem.attrib[rng.choice(sorted(elem.attrib))]
        return
    name = rng.choice(sorted(elem.attrib)) if elem.attrib and rng.random() < 0.6 else rng.choice(XML_ATTRS)
    elem.set(name, huge(rng) if rng.random() < 0.05 else rng.choice(STRINGS))


def _text(rng: random.Random, root: ET.Element) -> None:
    _, elem = rng.choice(_elements(root))
    elem.text = huge(rng) if rng.random() < 0.05 else rng.choice(STRINGS)


def _insert(rng: random.Random, root: ET.Element) -> None:
    _, elem = rng.choice(_elements(root))
    child = ET.SubElement(elem, rng.choice(XML_TAGS))
    for _ in range(rng.randrange(3)):
        child.set(rng.choice(XML_ATTRS), rng.choice(STRINGS))


TREE_OPS: tuple[Callable[[random.Random, ET.Element], None], ...] = (
    _drop, _duplicate, _reorder, _attr, _attr, _text, _insert, _insert,
)  # fmt: skip

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE domain [\n <!ENTITY l0 "lol">\n'
    + "".join(f' <!ENTITY l{i} "{f"&l{i - 1};" * 10}">\n' for i in range(1, 10))
    + "]>\n"
)
EXTERNAL_ENTITY = '<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'


def _with_entities(text: str, rng: random.Random) -> str:
    """A DOCTYPE declaring entities, one of them used in the first element's text."""
    head = rng.choice((BILLION_LAUGHS, EXTERNAL_ENTITY, '<!DOCTYPE domain [<!ENTITY x "vnet0">]>\n'))
    ref = "&l9;" if head is BILLION_LAUGHS else "&x;"
    body = text.split("?>", 1)[-1] if text.startswith("<?xml") else text
    close = body.find(">")
    return head + (body[: close + 1] + ref + body[close + 1 :] if close >= 0 else body)


def _deep(text: str, rng: random.Random) -> str:
    close = text.find(">")
    depth = rng.choice((100, 1000, 20_000))
    return text[: close + 1] + "<x>" * depth + "</x>" * depth + text[close + 1 :]


def _splice(text: str, rng: random.Random) -> str:
    """Raw text damage: truncation, a stray NUL / control / surrogate / markup character."""
    pos = rng.randrange(len(text) + 1)
    what = rng.randrange(5)
    if what == 0:
        return text[:pos]
    junk = ("\x00", "\x01", "\ud800", "<", "&", "]]>", "\ufeff", "<!--", "&#0;", "&#xd800;")
    return text[:pos] + rng.choice(junk) + text[pos + (what == 1) :]


def _namespaced(text: str, rng: random.Random) -> str:
    close = text.find(">")
    tag_end = min(i for i in (text.find(" "), close) if i >= 0) if close >= 0 else 0
    return text[:tag_end] + ' xmlns="urn:x"' + text[tag_end:] if rng.random() < 0.5 else text


TEXT_OPS: tuple[Callable[[str, random.Random], str], ...] = (_with_entities, _deep, _splice, _splice, _namespaced)


def mutate_xml(rng: random.Random, seed: str) -> str:
    """1-4 tree edits, then (one time in four) one raw-text edit."""
    root = ET.fromstring(seed)
    for _ in range(rng.randint(1, 4)):
        rng.choice(TREE_OPS)(rng, root)
    text = ET.tostring(root, encoding="unicode")
    if rng.random() < 0.25:
        text = rng.choice(TEXT_OPS)(text, rng)
    return text


# --- JSON ------------------------------------------------------------------------------------


def _containers(doc: Any) -> list[Any]:
    out: list[Any] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            out.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    return out


def _json_edit(rng: random.Random, node: Any) -> None:
    if isinstance(node, list):
        if not node:
            node.append(scalar(rng))
            return
        i = rng.randrange(len(node))
        op = rng.randrange(4)
        if op == 0:
            del node[i]
        elif op == 1:
            node.insert(i, copy.deepcopy(node[i]))
        elif op == 2:
            rng.shuffle(node)
        else:
            node[i] = scalar(rng)
        return
    keys = sorted(node, key=str)
    op = rng.randrange(4)
    if keys and op == 0:
        del node[rng.choice(keys)]
    elif keys and op == 1:
        node[rng.choice(keys)] = scalar(rng)
    elif keys and op == 2:
        key = rng.choice(keys)
        node[key] = [node[key]] if rng.random() < 0.5 else {"x": node[key]}
    else:
        node[rng.choice(JSON_KEYS)] = scalar(rng)


def mutate_json(rng: random.Random, seed: Any) -> Any:
    """1-4 edits at random containers: drop, duplicate, reorder, retype, wrap, add a known key."""
    doc = copy.deepcopy(seed)
    if rng.random() < 0.02:
        return scalar(rng)  # not even the right top-level type
    for _ in range(rng.randint(1, 4)):
        nodes = _containers(doc)
        if not nodes:
            return doc
        _json_edit(rng, rng.choice(nodes))
    if rng.random() < 0.02:
        for _ in range(rng.choice((100, 5000))):
            doc = [doc]
    return doc


def mutate_json_lines(rng: random.Random, seed: str) -> str:
    """One JSON document a line (ovs-vsctl --format=json): the documents mutated as one list,
    then (one time in ten) a line damaged as text."""
    docs = mutate_json(rng, [json.loads(line) for line in seed.splitlines() if line.strip()])
    try:
        lines = [json.dumps(d) for d in docs] if isinstance(docs, list) else [json.dumps(docs)]
    except RecursionError:  # nested deeper than json writes: as text, for the reader's json.loads
        lines = ["[" * 100_000 + "]" * 100_000]
    if rng.random() < 0.1 and lines:
        i = rng.randrange(len(lines))
        lines[i] = _splice(lines[i], rng)
    return "\n".join(lines)


# --- bytes and lines -------------------------------------------------------------------------


def mutate_bytes(rng: random.Random, seed: list[bytes]) -> list[bytes]:
    """Netlink damage: flipped bytes, truncation, a length field set to an edge value, spliced
    or repeated datagrams."""
    grams = [bytearray(g) for g in seed] or [bytearray()]
    for _ in range(rng.randint(1, 4)):
        g = rng.choice(grams)
        op = rng.randrange(5)
        if op == 0 and g:
            g[rng.randrange(len(g))] = rng.randrange(256)
        elif op == 1:
            del g[rng.randrange(len(g) + 1) :]
        elif op == 2 and len(g) >= 2:
            pos = rng.randrange(len(g) - 1) & ~1  # a u16 length of an rtattr or half an nlmsg length
            g[pos : pos + 2] = struct.pack("=H", rng.choice((0, 1, 3, 4, 5, 0xFFFF, len(g) - pos)) & 0xFFFF)
        elif op == 3:
            grams.append(bytearray(rng.choice(grams)))
        else:
            pos = rng.randrange(len(g) + 1)
            g[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 4, 8))))
    return [bytes(g) for g in grams]


def mutate_lines(rng: random.Random, seed: str) -> str:
    """Line-oriented text (iptables-save): drop, duplicate, reorder, split or retype words."""
    lines = seed.splitlines()
    for _ in range(rng.randint(1, 4)):
        if not lines:
            lines.append(rng.choice(STRINGS))
            continue
        i = rng.randrange(len(lines))
        words = lines[i].split(" ")
        op = rng.randrange(5)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            del words[rng.randrange(len(words)) :]
            lines[i] = " ".join(words)
        elif op == 3:
            words[rng.randrange(len(words))] = rng.choice((*STRINGS, "!", "-j", "-A", "-s", "-o", ":X", "*nat"))
            lines[i] = " ".join(words)
        else:
            lines.insert(i, rng.choice(("*filter", ":FORWARD", "-A", "-A X -j", "! -o", "-A F ! -j")))
    return "\n".join(lines)
