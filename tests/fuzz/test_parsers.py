"""Every parser on structure-aware mutations of real inputs (fixed seeds: the same inputs on
every run, a failure names its seed): it returns, or raises the error it documents.

The long run is ``make fuzz`` (bench/fuzz.py); these are its quick, deterministic slice.
"""

from __future__ import annotations

import contextlib
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.mutate import BILLION_LAUGHS, EXTERNAL_ENTITY
from tests.fuzz.targets import TARGETS, Target, domain_seeds, one_megabyte_domain
from vifscope.model import DomainState
from vifscope.sources.libvirt.domxml import DomainXmlError, parse_domain, parse_domain_xml
from vifscope.sources.libvirt.factxml import FactXmlError, parse_nwfilter_xml
from vifscope.sources.libvirt.netxml import NetworkXmlError, parse_network_xml

INPUTS_PER_TARGET = 600
JSON_TARGETS = [t for t in TARGETS if t.mutate.__name__ == "mutate_json"]
# Any JSON document, keys drawn mostly from the ones the readers look at.
KEYS = st.sampled_from(
    [
        "ifname",
        "ifindex",
        "flags",
        "linkinfo",
        "info_kind",
        "info_data",
        "stats64",
        "rx",
        "dev",
        "kind",
        "dst",
        "state",
        "addr_info",
        "local",
        "nftables",
        "chain",
        "rule",
        "expr",
        "hook",
        "match",
        "left",
        "right",
        "prefix",
        "xt",
        "name",
        "family",
    ]
) | st.text(max_size=5)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def fuzz_one(target: Target, seed: int) -> None:
    """Input number ``seed`` of ``target``: mutated from one of its seeds, then parsed."""
    rng = random.Random(f"{target.name}:{seed}")
    seeds = target.seeds()
    data = target.mutate(rng, seeds[rng.randrange(len(seeds))])
    with contextlib.suppress(target.allowed):  # the documented error is an answer too
        target.run(data)


def test_every_target_has_seeds() -> None:
    assert all(len(t.seeds()) >= 1 for t in TARGETS)
    assert len(domain_seeds()) >= 60  # libvirt's own test corpus plus the golden domains


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_mutated_inputs_raise_only_documented_errors(target: Target) -> None:
    for seed in range(INPUTS_PER_TARGET):
        try:
            fuzz_one(target, seed)
        except Exception as exc:
            raise AssertionError(f"{target.name} input #{seed}: {type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("target", JSON_TARGETS, ids=[t.name for t in JSON_TARGETS])
@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(doc=JSON)
def test_any_json_document_is_read_or_refused_by_shape(target: Target, doc: object) -> None:
    with contextlib.suppress(target.allowed):
        target.run(doc)


def test_mutations_reach_both_outcomes() -> None:
    """The mutators neither only break nor only keep the documents: both branches are fuzzed."""
    target = next(t for t in TARGETS if t.name == "domain-xml")
    outcomes = {"parsed": 0, "refused": 0}
    for seed in range(300):
        rng = random.Random(seed)
        try:
            target.run(target.mutate(rng, target.seeds()[rng.randrange(len(target.seeds()))]))
            outcomes["parsed"] += 1
        except target.allowed:
            outcomes["refused"] += 1
    assert outcomes["parsed"] > 150 and outcomes["refused"] > 5, outcomes


ENTITY_DOCS = [
    BILLION_LAUGHS + "<domain><name>&l9;</name></domain>",
    EXTERNAL_ENTITY + "<domain><name>&x;</name></domain>",
    '<!DOCTYPE domain [<!ENTITY x "vnet0">]><domain><name>&x;</name></domain>',
    '<!DOCTYPE domain [<!ENTITY % p "x">]><domain/>',
]


@pytest.mark.parametrize("text", ENTITY_DOCS, ids=["billion-laughs", "external", "internal", "parameter"])
def test_entity_declarations_are_refused_by_every_xml_reader(text: str) -> None:
    with pytest.raises(DomainXmlError, match="entity"):
        parse_domain_xml(text, DomainState.RUNNING)
    with pytest.raises(NetworkXmlError, match="entity"):
        parse_network_xml(text.replace("domain", "network"), active=True, autostart=None)
    with pytest.raises(FactXmlError, match="entity"):
        parse_nwfilter_xml(text.replace("domain", "filter"))


def test_a_doctype_without_entities_still_parses() -> None:
    vifs = parse_domain_xml('<!DOCTYPE domain><domain><name>d</name><devices><interface type="bridge"/>'
                            "</devices></domain>", DomainState.RUNNING)  # fmt: skip
    assert [(v.domain, v.type) for v in vifs] == [("d", "bridge")]


def test_a_one_megabyte_domain_parses_in_linear_time() -> None:
    text = one_megabyte_domain()
    start = time.perf_counter()
    parsed = parse_domain(text, DomainState.RUNNING)
    elapsed = time.perf_counter() - start
    assert len(parsed.vifs) == text.count("<interface ") > 1000
    assert elapsed < 5.0, f"1 MB domain XML took {elapsed:.2f} s"  # ~0.1 s here: see RELIABILITY.md
