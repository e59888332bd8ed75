"""Checking JSON against LINE's OpenAPI files, with their discriminators honoured."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from linebot_app.line.messages import MAX_TEXT_UTF16, utf16_len

REF = "#/components/schemas/"


def _base(name: str) -> str:
    return f"{name}__base"


def _discriminated(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Turn an OpenAPI discriminator into if/then branches on the property's value."""
    disc = schema["discriminator"]
    prop = disc["propertyName"]
    mapping = disc.get("mapping") or {}
    branches = [
        {"if": {"properties": {prop: {"const": value}}, "required": [prop]},
         "then": {"$ref": target}}
        for value, target in mapping.items()
    ]
    return {"allOf": [{"$ref": REF + _base(name)}, *branches],
            "properties": {prop: {"enum": sorted(mapping)}}}


def _point_allof_at_bases(node: Any, bases: set[str]) -> None:
    """Inside allOf, a reference to a discriminated parent means its plain base schema."""
    if isinstance(node, dict):
        for part in node.get("allOf", []):
            ref = part.get("$ref", "") if isinstance(part, dict) else ""
            if ref.startswith(REF) and ref[len(REF):] in bases:
                part["$ref"] = REF + _base(ref[len(REF):])
        for value in node.values():
            _point_allof_at_bases(value, bases)
    elif isinstance(node, list):
        for value in node:
            _point_allof_at_bases(value, bases)


def to_json_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema document whose components validate like the OpenAPI file means."""
    schemas = copy.deepcopy(doc["components"]["schemas"])
    bases = {n for n, s in schemas.items() if isinstance(s, dict) and "discriminator" in s}
    _point_allof_at_bases(schemas, bases)
    for name in bases:
        plain = {k: v for k, v in schemas[name].items() if k != "discriminator"}
        schemas[_base(name)] = plain
        schemas[name] = _discriminated(schemas, name, schemas[name])
    return {"components": {"schemas": schemas}}


class SpecChecker:
    """Validates objects against named schemas of one OpenAPI file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @functools.cached_property
    def _doc(self) -> dict[str, Any]:
        with self.path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

    @functools.cached_property
    def _root(self) -> dict[str, Any]:
        return to_json_schema(self._doc)

    def errors(self, schema: str, instance: Any) -> list[str]:
        """Every violation, as 'where: what' lines."""
        root = {**self._root, "$ref": REF + schema}
        validator = jsonschema.Draft202012Validator(root)
        found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [f"{_where(e.absolute_path)}: {e.message[:300]}" for e in found]


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "(body)"


def limit_errors(body: dict[str, Any]) -> list[str]:
    """LINE's limits that the OpenAPI file does not state (text length in UTF-16 units)."""
    problems = []
    for i, msg in enumerate(body.get("messages") or []):
        text = msg.get("text") if isinstance(msg, dict) else None
        if isinstance(text, str) and utf16_len(text) > MAX_TEXT_UTF16:
            problems.append(f".messages[{i}].text: {utf16_len(text)} UTF-16 units > 5000")
    return problems
