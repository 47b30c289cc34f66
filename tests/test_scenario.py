"""scenario: loading, validation errors that name the key, overrides, --set strings, extends."""

from __future__ import annotations

import pytest

from socialcredit.errors import ScenarioError, UserError
from socialcredit.scenario import Scenario, shipped
from socialcredit.scenario.loader import merge, parse_value


def test_load_ref():
    s = Scenario.load("ref")
    assert s.name == "ref"
    assert s.source == "ref.toml"
    assert "SPEC section 9" in s.description
    assert "ref" in shipped()
    camera = s.plugins("observation")["camera"]
    assert camera.kind == "camera"
    assert (camera.config.detect_urban, camera.config.detect_rural, camera.config.false_match) == (0.7, 0.1, 0.01)
    assert set(s.plugins("behaviour")) == {
        "jaywalk", "traffic_violation", "missed_payment", "critical_post", "volunteering", "gaming",
    }
    assert s.plugins("population")["population"].config.regions == 31
    assert s.plugins("graph")["graph"].config.draws == 5
    assert s.plugins("records")["court_list"].config.term_days == 730
    assert s.plugins("scoring")["platform"].config.every_days == 30
    assert s.header.output.panel == 100_000


def test_plugins_are_fresh_copies():
    s = Scenario.load("ref")
    a, b = s.plugins("records")["points"], s.plugins("records")["points"]
    assert a is not b
    a.extra = 1
    assert not hasattr(s.plugins("records")["points"], "extra")


def test_to_dict_round_trips():
    s = Scenario.load("ref")
    d = s.to_dict()
    assert d["observation"]["camera"]["false_match"] == 0.01
    assert Scenario(d, "copy").plugins("observation")["camera"].config.false_match == 0.01


def test_unknown_plugin_key_names_its_path():
    with pytest.raises(ScenarioError, match=r"ref\.toml: observation\.camera\.zoom: unknown key"):
        Scenario.load("ref").override(**{"observation.camera.zoom": 2})


def test_unknown_top_level_key():
    with pytest.raises(ScenarioError, match=r"ref\.toml: colour: unknown key"):
        Scenario.load("ref").override(colour="red")


def test_unknown_key_in_toml_file(tmp_path):
    text = (tmp_path / "x.toml")
    text.write_text('extends = "ref"\nname = "x"\n[records.points]\nbonus = 3\n')
    with pytest.raises(ScenarioError) as exc:
        Scenario.load(text)
    assert "records.points.bonus: unknown key" in str(exc.value)
    assert str(text) in str(exc.value)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("observation.camera.false_match", 1.5, "observation.camera.false_match"),
        ("observation.camera.detect_urban", -0.1, "observation.camera.detect_urban"),
        ("behaviour.jaywalk.rate_urban", 2.0, "behaviour.jaywalk.rate_urban"),
        ("population.urban", 1.01, "population.urban"),
        ("consequences.unfriend.probability", -1, "consequences.unfriend.probability"),
    ],
)
def test_out_of_range_probability_rejected(path, value, where):
    with pytest.raises(ScenarioError) as exc:
        Scenario.load("ref").override(**{path: value})
    msg = str(exc.value)
    assert f"{where}:" in msg
    assert repr(value) in msg


def test_wrong_type_rejected():
    with pytest.raises(ScenarioError, match=r"graph\.draws"):
        Scenario.load("ref").override(**{"graph.draws": "many"})


def test_scenario_error_is_a_user_error():
    assert issubclass(ScenarioError, UserError)


def test_override_returns_a_new_validated_scenario():
    base = Scenario.load("ref")
    s = base.override(**{"observation.camera.false_match": 0.02, "records.court_list.term_days": 10})
    assert s.plugins("observation")["camera"].config.false_match == 0.02
    assert s.plugins("records")["court_list"].config.term_days == 10
    assert base.plugins("observation")["camera"].config.false_match == 0.01, "the original is unchanged"
    assert base.data["observation"]["camera"]["false_match"] == 0.01


def test_override_revalidates_cross_field_rules():
    # points base outside min..max is caught by the points model validator
    with pytest.raises(ScenarioError, match=r"records\.points.*base 1300 outside"):
        Scenario.load("ref").override(**{"records.points.base": 1300})
    # weights must sum to 1
    with pytest.raises(ScenarioError, match="sum to 1"):
        Scenario.load("ref").override(**{"scoring.platform.weights.history": 0.5})


def test_override_can_add_a_plugin_table():
    s = Scenario.load("ref").override(**{"observation.extra.kind": "registry", "observation.extra.events": ["trip"],
                                         "observation.extra.detect": 0.2})
    assert s.plugins("observation")["extra"].config.detect == 0.2


def test_override_through_a_value_is_an_error():
    with pytest.raises(ScenarioError, match="is a value, not a table"):
        Scenario.load("ref").override(**{"name.sub": 1})


def test_load_with_overrides_argument():
    s = Scenario.load("ref", overrides={"graph.local_share": 0.5})
    assert s.plugins("graph")["graph"].config.local_share == 0.5


def test_with_sets_parses_toml_values():
    s = Scenario.load("ref").with_sets([
        "observation.camera.false_match=0.02",
        "records.court_list.term_days = 365",
        'observation.camera.events=["jaywalk", "traffic_violation"]',
        "description=plain text",
    ])
    assert s.plugins("observation")["camera"].config.false_match == 0.02
    assert s.plugins("records")["court_list"].config.term_days == 365
    assert s.plugins("observation")["camera"].config.events == ["jaywalk", "traffic_violation"]
    assert s.description == "plain text"
    assert Scenario.load("ref").with_sets([]).name == "ref"


def test_with_sets_errors():
    with pytest.raises(ScenarioError, match=r"expected key\.path=value"):
        Scenario.load("ref").with_sets(["observation.camera.false_match"])
    with pytest.raises(ScenarioError, match=r"expected key\.path=value"):
        Scenario.load("ref").with_sets(["observation..x=1"])
    with pytest.raises(ScenarioError, match=r"observation\.camera\.false_match"):
        Scenario.load("ref").with_sets(["observation.camera.false_match=2"])


def test_parse_value():
    assert parse_value("0.02") == 0.02
    assert parse_value("3") == 3
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("{ a = 1 }") == {"a": 1}
    assert parse_value("hello world") == "hello world"


def test_unknown_scenario_name():
    with pytest.raises(ScenarioError, match=r"unknown scenario 'no_such_thing'.*shipped: .*ref"):
        Scenario.load("no_such_thing")


def test_missing_toml_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        Scenario.load(tmp_path / "missing.toml")


def test_malformed_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[graph\nkind = 1\n')
    with pytest.raises(ScenarioError, match=r"bad\.toml: malformed TOML"):
        Scenario.load(path)


def test_missing_section(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text('name = "empty"\n')
    with pytest.raises(ScenarioError, match=r"\[population\]: missing table"):
        Scenario.load(path)


def test_unknown_plugin_kind():
    with pytest.raises(ScenarioError, match=r"observation\.camera\.kind: unknown observation kind 'drone'"):
        Scenario.load("ref").override(**{"observation.camera.kind": "drone"})


def test_extends_ref_from_a_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "ref"\nname = "mine"\n\n[observation.camera]\nfalse_match = 0.05\n')
    s = Scenario.load(path)
    ref = Scenario.load("ref")
    assert s.name == "mine"
    assert s.source == str(path)
    cam = s.plugins("observation")["camera"].config
    assert cam.false_match == 0.05
    # the rest of the table and of the scenario comes from ref
    assert cam.detect_urban == 0.7 and cam.events == ["jaywalk"]
    assert s.data["extends"] == "ref"
    for section in ("behaviour", "records", "scoring", "consequences"):
        assert s.data[section] == ref.data[section]
    assert {k: v for k, v in s.data["observation"].items() if k != "camera"} == {
        k: v for k, v in ref.data["observation"].items() if k != "camera"
    }


def test_extends_a_sibling_file_chain(tmp_path):
    (tmp_path / "base.toml").write_text('extends = "ref"\nname = "base"\n[graph]\nlocal_share = 0.5\n')
    (tmp_path / "top.toml").write_text('extends = "base.toml"\nname = "top"\n[graph]\ndraws = 3\n')
    s = Scenario.load(tmp_path / "top.toml")
    g = s.plugins("graph")["graph"].config
    assert (g.draws, g.local_share) == (3, 0.5)
    assert s.name == "top"


def test_extends_cycle_is_reported(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\nname = "a"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\nname = "b"\n')
    with pytest.raises(ScenarioError, match="deeper than"):
        Scenario.load(tmp_path / "a.toml")


def test_changing_kind_replaces_the_table(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('extends = "ref"\nname = "k"\n[observation.camera]\nkind = "registry"\n'
                    'events = ["jaywalk"]\ndetect = 0.4\n')
    s = Scenario.load(path)
    cam = s.plugins("observation")["camera"]
    assert cam.kind == "registry" and cam.config.detect == 0.4
    assert "false_match" not in s.data["observation"]["camera"]


def test_merge_is_deep_and_does_not_mutate():
    base = {"a": {"kind": "x", "p": 1, "q": {"r": 2}}, "b": 1}
    top = {"a": {"q": {"s": 3}}, "c": 4}
    out = merge(base, top)
    assert out == {"a": {"kind": "x", "p": 1, "q": {"r": 2, "s": 3}}, "b": 1, "c": 4}
    assert base == {"a": {"kind": "x", "p": 1, "q": {"r": 2}}, "b": 1}
