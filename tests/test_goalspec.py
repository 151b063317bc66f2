"""Goal strings (params.yaml and the CLI) → goals, and their one-line errors."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import tiny_model

from latentsteer.experiment_config import ExperimentConfig
from latentsteer.goalspec import check_goal_set, parse_goal
from latentsteer.objectives import AtLeast, Class, Increase, Keep, Maximize, Minimize, Target


@pytest.mark.parametrize(
    ("text", "cls", "attrs"),
    [
        ("thickness=max", Maximize, {"prop": "thickness", "weight": 1.0}),
        ("thickness=min@2", Minimize, {"prop": "thickness", "weight": 2.0}),
        ("thickness=3.5", Target, {"value": 3.5, "tol": 0.25}),
        ("thickness=4", Target, {"value": 4.0}),
        ("thickness=+1.5", Increase, {"by": 1.5}),
        ("thickness=-0.5 @ 3", Increase, {"by": -0.5, "weight": 3.0}),
        ("thickness=keep", Keep, {"head": "thickness", "constraint": True}),
        ("digit=3", Class, {"head": "digit", "k": 3}),
        ("digit=keep", Keep, {"head": "digit", "constraint": True}),
        ("thickness>=+1", AtLeast, {"by": 1.0, "lower": False}),
        ("thickness<=-0.5@2", AtLeast, {"by": -0.5, "lower": True, "weight": 2.0}),
    ],
)
def test_goal_strings_build_the_named_goal(text, cls, attrs):
    goal = parse_goal(text).goal(tiny_model())
    assert type(goal) is cls
    for key, value in attrs.items():
        assert getattr(goal, key) == value, key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thickness", "bad goal 'thickness'; accepted: prop=max"),
        ("thickness=big", "'big' is not accepted; accepted: prop=max"),
        ("thickness=max@0", "weight must be a positive number"),
        ("thickness=max@x", "weight 'x' is not a number"),
        ("thickness=nan", "the value must be finite"),
    ],
)
def test_malformed_goal_strings_say_what_is_accepted(text, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        parse_goal(text)


def test_goal_errors_need_the_model_to_name_heads():
    model = tiny_model()
    with pytest.raises(
        ValueError, match="unknown property 'stroke'; this model has digit, thickness"
    ):
        parse_goal("stroke=max").goal(model)
    with pytest.raises(
        ValueError, match="'digit' is a class head; accepted: digit=K or digit=keep"
    ):
        parse_goal("digit=max").goal(model)
    with pytest.raises(ValueError, match="accepted: digit=K"):
        parse_goal("digit=2.5").goal(model)
    with pytest.raises(ValueError, match="classes run from 0 to 9"):
        parse_goal("digit=12").goal(model).bind(model, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="thickness=40 is impossible for this model"):
        parse_goal("thickness=40").goal(model).bind(model, torch.zeros(2, 4))


def test_negative_change_lowers_the_property():
    model = tiny_model()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    down = parse_goal("thickness=-0.5").goal(model).bind(model, z)
    start = model.predict(z)["thickness"]
    assert down.label == "thickness=-0.5"
    assert not down.satisfied({"thickness": start}).any()
    assert down.satisfied({"thickness": start - 0.6}).all()
    assert (down.violation({"thickness": start - 0.5}) == 0).all()
    with pytest.raises(ValueError, match="non-zero"):
        Increase("thickness", 0.0).bind(model, z)


def test_bound_goals_say_when_they_hold_and_climb_past_them():
    model = tiny_model()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    start = model.predict(z)["thickness"]
    up = parse_goal("thickness>=+1").goal(model).bind(model, z)
    assert up.label == "thickness>=+1"
    assert not up.satisfied({"thickness": start + 0.9}).any()
    assert up.satisfied({"thickness": start + 1.0}).all()
    torch.testing.assert_close(up.violation({"thickness": start + 2}), torch.zeros(6))
    sd = float(model.target_std[model.head_names.index("thickness")])
    torch.testing.assert_close(up.violation({"thickness": start}), torch.full((6,), 1 / sd))
    # the score keeps rising past the bound: the heads climb, the closed loop says when
    assert (up.score({"thickness": start + 3}) > up.score({"thickness": start + 2})).all()
    down = parse_goal("thickness<=-0.5").goal(model).bind(model, z)
    assert down.satisfied({"thickness": start - 0.5}).all()
    assert not down.satisfied({"thickness": start - 0.4}).any()
    assert (down.score({"thickness": start - 1}) > down.score({"thickness": start})).all()


@pytest.mark.parametrize(
    ("goals", "message"),
    [
        (["thickness=max", "thickness=min"], "goals thickness=max and thickness=min both set"),
        (["digit=keep", "thickness=+1", "thickness=+1"], "thickness=+1 and thickness=+1 both"),
        (["digit=3", "thickness=max", "digit=keep@2"], "goals digit=3 and digit=keep@2 both set"),
    ],
)
def test_two_goals_on_one_property_are_refused_in_one_line(goals, message):
    specs = [parse_goal(g) for g in goals]
    prop = specs[-1].prop
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        check_goal_set(specs)
    assert str(err.value).endswith(f"both set {prop}; give one goal per property")
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(ValueError, match=re.escape(message)):
        ExperimentConfig(goals=goals)
    check_goal_set([parse_goal("thickness=max"), parse_goal("digit=keep")])  # one each: fine


def test_params_and_molecule_tasks_refuse_two_goals_on_one_property():
    from latentsteer.config import ConfigError, section
    from latentsteer.domains.molecules.domain import MOLECULES
    from latentsteer.experiment_config import configure

    entry = {"goals": ["thickness=max", " thickness = min "]}
    with pytest.raises(ConfigError) as err:
        section({"experiments.x": entry}, "experiments.x", ExperimentConfig)
    assert "experiments.x" in str(err.value)
    assert "goals thickness=max and thickness = min both set thickness" in str(err.value)
    with pytest.raises(ValueError, match="goals qed=max and qed=min both set qed; give one"):
        configure(MOLECULES, {"goals": ["qed=max", "logp=keep", "qed=min"]})
    cfg = configure(MOLECULES, {"goals": ["qed=max", "logp=keep"]})
    assert [s.prop for s in cfg.specs] == ["qed", "logp"]
