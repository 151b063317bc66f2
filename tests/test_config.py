"""params.yaml parsing: every bad value is one line naming the key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from latentsteer.config import load_params, section
from latentsteer.errors import ConfigError


@dataclass(frozen=True)
class Demo:
    mode: Literal["a", "b"] = "a"  # a choice
    rate: float = 0.1  # a number
    steps: int = 3  # a count
    name: str | None = None  # optional

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"demo.rate must be positive; got {self.rate}")


def test_defaults_and_values():
    assert section({}, "demo", Demo) == Demo()
    assert section({"demo": {"rate": 2, "mode": "b"}}, "demo", Demo) == Demo(mode="b", rate=2)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": 1}, "unknown key demo.colour; accepted: mode, name, rate, steps"),
        ({"mode": "c"}, "demo.mode must be one of 'a', 'b'; got 'c'"),
        ({"steps": 1.5}, "demo.steps must be int; got 1.5"),
        ({"steps": True}, "demo.steps must be int; got True"),
        ({"rate": "fast"}, "demo.rate must be float; got 'fast'"),
        ({"name": 3}, "demo.name must be str or null; got 3"),
        ({"rate": -1.0}, "params.yaml: demo.rate must be positive"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError) as err:
        section({"demo": values}, "demo", Demo)
    assert message in str(err.value)


def test_load_params_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_params(bad)
