"""The fleet's vifs as ``flows`` names peers by them: every answering host's vifs, and one
source error per host that did not answer (its vifs simply name nothing). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from vifscope.fleet.model import HostAnswer
from vifscope.model import SourceError
from vifscope.model.fleetvif import FleetPeerVif

FLEET_SOURCE = "fleet"


def peer_vifs(answers: Sequence[HostAnswer]) -> tuple[tuple[FleetPeerVif, ...], tuple[SourceError, ...]]:
    vifs = tuple(
        FleetPeerVif(v.host, v.domain, v.mac, v.addresses, v.active) for a in answers if a.error is None for v in a.vifs
    )
    errors = tuple(
        SourceError(FLEET_SOURCE, f"{a.name}: {a.error}", "its vifs are not named; is its vifscope serve running?")
        for a in answers
        if a.error is not None
    )
    return vifs, errors
