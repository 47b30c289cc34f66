"""Plugins found by name.

A scenario names its parts (``kind = "camera"``); the registry maps each name
to a plugin class. Third parties register their own with the decorator::

    from socialcredit.registry import register

    @register("scoring", "my-score")
    class MyScore(Plugin): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from socialcredit.errors import ScenarioError

SECTIONS = ("population", "graph", "behaviour", "observation", "records", "scoring", "consequences")

_REGISTRY: dict[str, dict[str, type]] = {section: {} for section in SECTIONS}

T = TypeVar("T", bound=type)


def register(section: str, kind: str) -> Callable[[T], T]:
    """Class decorator registering a plugin under ``section`` and ``kind``."""
    if section not in _REGISTRY:
        raise ValueError(f"unknown plugin section {section!r}")

    def decorate(cls: T) -> T:
        _REGISTRY[section][kind] = cls
        cls.kind = kind  # type: ignore[attr-defined]
        cls.section = section  # type: ignore[attr-defined]
        return cls

    return decorate


def lookup(section: str, kind: str, where: str = "") -> type:
    """The plugin class registered as ``kind`` in ``section``."""
    _load_builtins()
    try:
        return _REGISTRY[section][kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY.get(section, {}))) or "none"
        raise ScenarioError(f"{where}unknown {section} kind {kind!r} (known: {known})") from None


def kinds(section: str) -> list[str]:
    """Names registered in ``section``."""
    _load_builtins()
    return sorted(_REGISTRY[section])


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import socialcredit.behaviour
    import socialcredit.consequences
    import socialcredit.observation
    import socialcredit.population
    import socialcredit.records
    import socialcredit.scoring  # noqa: F401
