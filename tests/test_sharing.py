"""records.sharing: which channels' observations reach which systems, and whether consent is needed."""

from __future__ import annotations

import pytest

from socialcredit.errors import ScenarioError
from socialcredit.records.sharing import DataSharing, DataSharingConfig, Flow
from socialcredit.scenario import Scenario


def _sharing(*flows: dict) -> DataSharing:
    return DataSharing("sharing", DataSharingConfig.model_validate({"flows": list(flows)}))


def test_flow_lookup_by_source_and_system():
    s = _sharing(
        {"source": "messaging_platform", "to": ["sesame", "tencent"], "consent": False},
        {"source": "police", "to": ["sesame"]},
        {"source": "payment_platform", "to": ["points"], "consent": False},
    )
    f = s.flow("messaging_platform", "tencent")
    assert f is not None and f.source == "messaging_platform" and f.consent is False
    assert s.flow("messaging_platform", "sesame") is f
    assert s.flow("police", "sesame").consent is True  # consent is required unless said otherwise
    assert s.flow("police", "tencent") is None  # the source exists, but not towards this system
    assert s.flow("camera", "sesame") is None  # no flow from this source
    assert s.flow("sesame", "messaging_platform") is None  # direction matters
    assert s.flow("payment_platform", "points").to == ["points"]


def test_first_matching_flow_wins():
    s = _sharing(
        {"source": "camera", "to": ["a", "b"], "consent": True},
        {"source": "camera", "to": ["b"], "consent": False},
    )
    assert s.flow("camera", "b").consent is True
    assert s.flow("camera", "a").consent is True


def test_no_flows():
    s = _sharing()
    assert s.flow("camera", "sesame") is None
    assert DataSharing("x", DataSharingConfig()).flow("camera", "sesame") is None


def test_flow_validation():
    assert Flow(source="camera", to=["z"]).consent is True
    with pytest.raises(ValueError):
        Flow(source="camera", to=[])
    with pytest.raises(ValueError):
        Flow(source="", to=["z"])
    with pytest.raises(ValueError):
        Flow(source="camera", to=["z"], consnet=False)


def test_flows_in_a_scenario():
    sharing = Scenario.load("china").plugins("records")["sharing"]
    assert sharing.kind == "data-sharing"
    assert sharing.flow("messaging_platform", "sesame").consent is False
    assert sharing.flow("police", "sesame") is not None
    assert sharing.flow("police", "tencent") is None
    tencent = Scenario.load("tencent").plugins("records")["sharing"]
    assert tencent.flow("messaging_platform", "tencent").consent is True


def test_unknown_key_in_a_flow_names_the_path():
    table = {"kind": "data-sharing", "flows": [{"source": "camera", "to": ["z"], "consnet": True}]}
    with pytest.raises(ScenarioError, match=r"records\.s\.flows\.0\.consnet: unknown key"):
        Scenario.load("ref").override(**{"records.s": table})
