"""Doctor checks: small pure functions over a HostSnapshot and its bindings, each with a stable
id, a category, a severity, evidence and the exact fix. ``run_checks`` is the entry point."""

from vifscope.checks.base import CATEGORIES, Check, CheckContext, Explain
from vifscope.checks.config import DEFAULT_PATH, ConfigError, DoctorConfig, load_config, parse_config
from vifscope.checks.isolation import IsolationSummary, Layer, Level
from vifscope.checks.runner import ALL_CHECKS, CHECKS_BY_ID, CheckRun, evaluate, run_checks

__all__ = [
    "ALL_CHECKS",
    "CATEGORIES",
    "CHECKS_BY_ID",
    "DEFAULT_PATH",
    "Check",
    "CheckContext",
    "CheckRun",
    "ConfigError",
    "DoctorConfig",
    "Explain",
    "IsolationSummary",
    "Layer",
    "Level",
    "evaluate",
    "load_config",
    "parse_config",
    "run_checks",
]
