"""watch configuration file: defaults, every key, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from vifscope.model import VifStatus
from vifscope.watch.config import ConfigError, WatchConfig, describe, load_config, parse_config


def test_empty_file_is_the_defaults() -> None:
    assert parse_config("") == WatchConfig()
    assert describe(WatchConfig())["heal"]["verdicts"] == ["detached", "down", "misbound"]


def test_every_key() -> None:
    cfg = parse_config(
        """
        [watch]
        resync_interval = 30
        debounce = 0.05
        [heal]
        verdicts = ["detached"]
        grace = 0.5
        max_heals = 2
        window = 120
        backoff_initial = 0.25
        backoff_max = 8
        domains = ["web1", "db1"]
        """
    )
    assert (cfg.resync_interval, cfg.debounce) == (30.0, 0.05)
    h = cfg.heal
    assert h.verdicts == frozenset({VifStatus.DETACHED})
    assert (h.grace, h.max_heals, h.window, h.backoff_initial, h.backoff_max) == (0.5, 2, 120.0, 0.25, 8.0)
    assert h.domains == frozenset({"web1", "db1"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[heal]\nverdicts = ['sideways']", "'sideways' is not a valid VifStatus", id="bad-verdict"),
        pytest.param("[heal]\nmax_heals = 0", "heal.max_heals must be a number >= 1", id="zero-heals"),
        pytest.param("[heal]\ngrace = 'soon'", "heal.grace must be a number", id="string-number"),
        pytest.param("[heal]\ngrace = true", "heal.grace must be a number", id="bool-number"),
        pytest.param("[heal]\nretries = 3", "unknown key(s) in [heal]: retries", id="unknown-key"),
        pytest.param("[healing]\n", "unknown section(s): healing", id="unknown-section"),
        pytest.param("[watch]\nresync_interval = 0.5", "watch.resync_interval must be a number >= 1", id="tiny"),
        pytest.param("[heal\n", "not valid TOML", id="syntax"),
        pytest.param("heal = 3", "[heal] must be a table", id="not-table"),
    ],
)
def test_mistakes_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        parse_config(text)
    assert message in str(err.value)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "watch.toml"
    path.write_text("[heal]\nmax_heals = -1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
