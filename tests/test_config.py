"""params.yaml parsing: every bad value is one line naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
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


@dataclass(frozen=True)
class Head:
    name: str = "digit"


@dataclass(frozen=True)
class Nested:
    goals: list[str] = field(default_factory=list)
    sizes: tuple[int, ...] = ()
    limit: int | None = 5
    tol: dict[str, float] = field(default_factory=dict)
    choices: list[Literal["x", "y"]] = field(default_factory=list)
    heads: tuple[Head, ...] = ()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": True}, "demo.rate must be float; got True"),
        ({"rate": np.bool_(True)}, "demo.rate must be float; got np.True_"),
        ({"rate": "1.5"}, "demo.rate must be float; got '1.5'"),
        ({"steps": "3"}, "demo.steps must be int; got '3'"),
        ({"steps": np.int64(3)}, "demo.steps must be int; got np.int64(3)"),
        ({"mode": ["a"]}, "demo.mode must be one of 'a', 'b'; got ['a']"),
        ({"name": False}, "demo.name must be str or null; got False"),
    ],
)
def test_pydantic_checks_keep_the_rules(values, message):
    with pytest.raises(ConfigError) as err:
        section({"demo": values}, "demo", Demo)
    assert str(err.value) == f"params.yaml: {message}"


def test_the_value_is_kept_as_given():
    """Pydantic only checks: an int stays an int, a list the same list (same results)."""
    cfg = section({"demo": {"rate": 2, "name": None}}, "demo", Demo)
    assert cfg.rate == 2 and type(cfg.rate) is int and cfg.name is None
    assert section({"demo": {"rate": np.float64(0.5)}}, "demo", Demo).rate == 0.5
    goals, tol = ["thicken"], {"thickness": 1}
    nested = section({"n": {"goals": goals, "tol": tol, "limit": None}}, "n", Nested)
    assert nested.goals is goals and nested.tol is tol and nested.limit is None


def test_lists_and_tuples_check_their_items():
    assert section({"n": {"goals": ("a", "b"), "sizes": [1, 2]}}, "n", Nested).sizes == [1, 2]
    assert section({"n": {"heads": [Head()], "choices": ["y"]}}, "n", Nested).heads == [Head()]
    assert section({"n": {"tol": {"x": "not checked here"}}}, "n", Nested).tol  # __post_init__'s
    cases = [
        ({"goals": ["a", 1]}, "n.goals must be list; got ['a', 1]"),
        ({"goals": "ab"}, "n.goals must be list; got 'ab'"),
        ({"sizes": [1, True]}, "n.sizes must be tuple; got [1, True]"),
        ({"choices": ["x", "z"]}, "n.choices must be list; got ['x', 'z']"),
        ({"heads": [{"name": "digit"}]}, "n.heads must be tuple; got [{'name': 'digit'}]"),
        ({"limit": 1.0}, "n.limit must be int or null; got 1.0"),
        ({"tol": [1]}, "n.tol must be dict; got [1]"),
    ]
    for values, message in cases:
        with pytest.raises(ConfigError) as err:
            section({"n": values}, "n", Nested)
        assert str(err.value) == f"params.yaml: {message}"


def test_a_group_member_is_named_by_its_full_key():
    key = "groups.digits.digit_4"
    with pytest.raises(ConfigError) as err:
        section({key: {"steps": 1.5}}, key, Demo)
    assert str(err.value) == "params.yaml: groups.digits.digit_4.steps must be int; got 1.5"


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
