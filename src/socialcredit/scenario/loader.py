"""Reading scenario files: TOML, ``extends``, ``--set`` overrides, validation."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from socialcredit.errors import ScenarioError
from socialcredit.registry import SECTIONS, lookup
from socialcredit.scenario.schema import ScenarioHeader

SINGLE = ("population", "graph")  # sections holding one plugin table
MULTI = tuple(s for s in SECTIONS if s not in SINGLE)  # sections of named tables
MAX_EXTENDS = 16


def shipped() -> dict[str, str]:
    """Shipped scenario names mapped to their one-line descriptions."""
    out = {}
    for entry in sorted(resources.files("socialcredit.scenarios").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = _parse(entry.read_text(encoding="utf-8"), entry.name)
            out[entry.name[:-5]] = str(data.get("description", "")).strip().splitlines()[0:1]
    return {k: (v[0] if v else "") for k, v in out.items()}


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: malformed TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: malformed TOML: nested too deeply") from None


def read_raw(name_or_path: str | Path, _depth: int = 0) -> tuple[dict[str, Any], str]:
    """Raw table of a scenario with ``extends`` resolved, and where it came from."""
    if _depth > MAX_EXTENDS:
        raise ScenarioError(f"{name_or_path}: 'extends' chain deeper than {MAX_EXTENDS} (a cycle?)")
    text, source = _read_text(str(name_or_path))
    data = _parse(text, source)
    parent = data.get("extends")
    if parent is None:
        return data, source
    if not isinstance(parent, str):
        raise ScenarioError(f"{source}: extends: expected a scenario name or path")
    base_ref = parent
    if not _is_shipped(parent) and not Path(parent).is_absolute() and Path(source).exists():
        candidate = Path(source).parent / parent
        if candidate.exists():
            base_ref = str(candidate)
    base, _ = read_raw(base_ref, _depth + 1)
    merged = merge(base, {k: v for k, v in data.items() if k != "extends"})
    merged["extends"] = parent
    return merged, source


def _is_shipped(name: str) -> bool:
    return resources.files("socialcredit.scenarios").joinpath(f"{name}.toml").is_file()


def _read_text(ref: str) -> tuple[str, str]:
    if _is_shipped(ref):
        res = resources.files("socialcredit.scenarios").joinpath(f"{ref}.toml")
        return res.read_text(encoding="utf-8"), f"{ref}.toml"
    path = Path(ref)
    if path.suffix == ".toml" or path.exists() or "/" in ref:
        if not path.is_file():
            raise ScenarioError(f"{ref}: no such scenario file")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{ref}: cannot read: {exc}") from None
    known = ", ".join(shipped())
    raise ScenarioError(f"unknown scenario {ref!r} (shipped: {known}; or give a .toml path)")


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of TOML tables: ``top`` wins; a changed ``kind`` replaces the table."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and value.get("kind", out[key].get("kind")) == out[key].get("kind")
        ):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_value(text: str) -> Any:
    """A ``--set`` value: any TOML value (number, bool, string, array, inline table),
    else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text


def set_path(data: dict[str, Any], path: str, value: Any, source: str) -> None:
    """Set ``a.b.c`` in nested tables, creating tables on the way."""
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise ScenarioError(f"{source}: --set {path!r}: expected key.path=value")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ScenarioError(f"{source}: --set {path}: {where} is a value, not a table")
        node = child
    node[parts[-1]] = value


def validate(data: dict[str, Any], source: str) -> tuple[ScenarioHeader, dict[str, dict[str, Any]]]:
    """Validate a raw scenario; return its header and plugin instances by section."""
    header_keys = set(ScenarioHeader.model_fields)
    unknown = [k for k in data if k not in header_keys and k not in SECTIONS]
    if unknown:
        raise ScenarioError(f"{source}: {unknown[0]}: unknown key (expected one of "
                            f"{', '.join(sorted(header_keys | set(SECTIONS)))})")
    header = _model(ScenarioHeader, {k: v for k, v in data.items() if k in header_keys}, source, "")
    plugins: dict[str, dict[str, Any]] = {}
    for section in SINGLE:
        if section not in data:
            raise ScenarioError(f"{source}: [{section}]: missing table")
        plugins[section] = {section: _plugin(section, section, data[section], source, section)}
    for section in MULTI:
        tables = data.get(section, {})
        if not isinstance(tables, dict):
            raise ScenarioError(f"{source}: {section}: expected a table of named tables")
        plugins[section] = {
            name: _plugin(section, name, table, source, f"{section}.{name}")
            for name, table in tables.items()
            if table is not False  # `name = false` drops a part inherited with `extends`
        }
    return header, plugins


def _plugin(section: str, name: str, table: Any, source: str, where: str) -> Any:
    if not isinstance(table, dict):
        raise ScenarioError(f"{source}: {where}: expected a table")
    kind = table.get("kind")
    if not isinstance(kind, str):
        raise ScenarioError(f"{source}: {where}.kind: missing (a {section} kind name)")
    cls = lookup(section, kind, f"{source}: {where}.kind: ")
    config = _model(cls.Config, {k: v for k, v in table.items() if k != "kind"}, source, where)
    return cls(name, config)


def _model(model: type[BaseModel], data: dict[str, Any], source: str, where: str) -> Any:
    try:
        return model.model_validate(data, context={"source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in (where.split(".") if where else []) + list(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        given = err.get("input")
        detail = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(given, dict) else f" (got {given!r})"
        raise ScenarioError(f"{source}: {loc or '(top level)'}: {msg}{detail}") from None
