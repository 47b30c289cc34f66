"""Scenarios: TOML files validated by pydantic, with ``extends`` and overrides."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from socialcredit.scenario.loader import parse_value, read_raw, set_path, shipped, validate
from socialcredit.scenario.schema import ScenarioHeader

__all__ = ["Scenario", "shipped"]


class Scenario:
    """A validated scenario: its resolved TOML data and its plugins.

    >>> s = Scenario.load("ref").override(**{"observation.camera.false_match": 0.02})
    >>> s.name
    'ref'
    """

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.source = source
        self.data = data
        self.header: ScenarioHeader
        self.header, self._plugins = validate(data, source)

    @classmethod
    def load(cls, name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
        """Load a shipped scenario by name, or a TOML file by path."""
        data, source = read_raw(name_or_path)
        scenario = cls(data, source)
        return scenario.override(**overrides) if overrides else scenario

    def override(self, **values: Any) -> Scenario:
        """A new scenario with ``{"key.path": value}`` overrides applied and revalidated."""
        data = copy.deepcopy(self.data)
        for path, value in values.items():
            set_path(data, path, value, self.source)
        return Scenario(data, self.source)

    def with_sets(self, assignments: list[str]) -> Scenario:
        """Apply CLI-style ``key.path=value`` strings (values parsed as TOML)."""
        values: dict[str, Any] = {}
        for item in assignments:
            key, sep, text = item.partition("=")
            if not sep:
                from socialcredit.errors import ScenarioError

                raise ScenarioError(f"--set {item!r}: expected key.path=value")
            values[key.strip()] = parse_value(text.strip())
        return self.override(**values) if values else self

    @property
    def name(self) -> str:
        """The scenario's name."""
        return self.header.name

    @property
    def description(self) -> str:
        """The scenario's description."""
        return self.header.description

    def plugins(self, section: str) -> dict[str, Any]:
        """Fresh plugin instances of one section, by table name."""
        return {name: copy.deepcopy(p) for name, p in self._plugins[section].items()}

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain data (JSON-serialisable)."""
        return json.loads(json.dumps(self.data, default=str))

    def __repr__(self) -> str:
        return f"Scenario({self.name!r}, source={self.source!r})"
