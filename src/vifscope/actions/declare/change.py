"""What ``vifscope apply --plan`` gives: each object's change as exact steps, and the refusals.
Pure data."""

from __future__ import annotations

from dataclasses import dataclass

from vifscope.actions.declare.vifqos import QosSet
from vifscope.actions.model import WriteFile
from vifscope.model import Command

Step = Command | WriteFile | QosSet


@dataclass(frozen=True)
class Change:
    """One object's change: ``op`` create / change / remove, ``what`` in words, exact steps."""

    kind: str  # bridge / network / vif / qos
    name: str
    op: str
    what: tuple[str, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class DeclPlan:
    uri: str
    changes: tuple[Change, ...] = ()
    refused: tuple[str, ...] = ()  # reasons apply will not run (one line each)


def step_text(step: Step) -> str:
    """One line per step (a written file by its path: its content is in the plan's JSON)."""
    return f"write {step.path}" if isinstance(step, WriteFile) else step.text()


def step_lines(step: Step) -> tuple[str, ...]:
    """What a step runs, a line a command (a QoS step runs several)."""
    return step.lines() if isinstance(step, QosSet) else (step_text(step),)
