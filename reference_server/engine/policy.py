"""The generation policy: a stricter schema to decode under, whose every output still validates under the client's.

A schema says what is valid, not what is useful: under pydantic's plain `model_json_schema()` (no
`additionalProperties: false`) a small model at temperature 1 adds keys until its budget runs out, and an
unbounded integer is a licence to print digits. So the server decodes under a tightened copy:

* no extra properties: an object that declares `properties` gets `additionalProperties: false` unless the schema
  needs more keys than it declares (`minProperties`, required keys it does not declare, `patternProperties`);
* soft bounds where the schema sets none, never below its own lower bounds: strings up to `STRING_CHARS`
  characters (not enums, consts, patterns or formats), arrays up to `ARRAY_ITEMS` items, free-form objects up to
  `OBJECT_KEYS` keys, numbers within +/- `NUMBER_SPAN` of their one bound (or of 0) and with at most two decimals.

Every bound is added only where the client's schema has none, so any output of the tightened schema is valid
under the original. Duplicate keys are kept out by the decoder (jsonclose.py), since no schema can say so.
"""

from __future__ import annotations

import copy
from typing import Any

STRING_CHARS = 32
ARRAY_ITEMS = 4
OBJECT_KEYS = 4
NUMBER_SPAN = 999_999
DECIMALS = 0.01  # multipleOf for unbounded non-integer numbers: at most two decimals

CHILD_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
CHILD_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
CHILD_ONE = ("items", "additionalProperties", "contains", "not", "if", "then", "else")


def generation_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` with the policy applied at every level (the input is not changed)."""
    out = copy.deepcopy(schema)
    _tighten(out)
    return out


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    if "properties" in node:
        return {"object"}
    if "items" in node or "prefixItems" in node:
        return {"array"}
    return set()


def _tighten(node: Any) -> None:
    if not isinstance(node, dict):
        return
    for key in CHILD_MAPS:
        for child in (node.get(key) or {}).values():
            _tighten(child)
    for key in CHILD_LISTS:
        for child in node.get(key) or []:
            _tighten(child)
    for key in CHILD_ONE:
        _tighten(node.get(key))
    if "enum" in node or "const" in node or "$ref" in node:
        return
    kinds = _types(node)
    if "object" in kinds:
        _object(node)
    if "array" in kinds:
        _bound(node, "maxItems", max(ARRAY_ITEMS, int(node.get("minItems", 0))))
    if "string" in kinds and "pattern" not in node and "format" not in node:
        _bound(node, "maxLength", max(STRING_CHARS, int(node.get("minLength", 0))))
    if kinds & {"integer", "number"}:
        _number(node, integer="number" not in kinds)


def _bound(node: dict[str, Any], key: str, value: int) -> None:
    node.setdefault(key, value)


def _any_value(depth: int = 2) -> dict[str, Any]:
    """Any JSON value, bounded by the policy: what a free-form object's values are decoded under."""
    scalars: list[dict[str, Any]] = [
        {"type": "string", "maxLength": STRING_CHARS}, {"type": "integer", "minimum": -NUMBER_SPAN,
                                                        "maximum": NUMBER_SPAN},
        {"type": "number", "minimum": -NUMBER_SPAN, "maximum": NUMBER_SPAN, "multipleOf": DECIMALS},
        {"type": "boolean"}, {"type": "null"}]
    if depth == 0:
        return {"anyOf": scalars}
    inner = _any_value(depth - 1)
    return {"anyOf": [*scalars, {"type": "array", "items": inner, "maxItems": ARRAY_ITEMS},
                      {"type": "object", "additionalProperties": inner, "maxProperties": OBJECT_KEYS}]}


def _object(node: dict[str, Any]) -> None:
    declared = node.get("properties")
    extra = node.get("additionalProperties", True)
    if declared is None:  # a free-form object (JSON mode, a map): few keys, bounded values
        if extra is not False:
            _bound(node, "maxProperties", max(OBJECT_KEYS, int(node.get("minProperties", 0))))
        if extra is True:
            node["additionalProperties"] = _any_value()
        return
    needs_more = (int(node.get("minProperties", 0)) > len(declared or {}) or "patternProperties" in node
                  or any(key not in declared for key in node.get("required") or []))
    if extra is not False and not needs_more:
        node["additionalProperties"] = False


def _number(node: dict[str, Any], *, integer: bool) -> None:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if low is None and high is None:
        node["minimum"], node["maximum"] = -NUMBER_SPAN, NUMBER_SPAN
    elif high is None:
        node["maximum"] = low + NUMBER_SPAN
    elif low is None:
        node["minimum"] = high - NUMBER_SPAN
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if not integer and "multipleOf" not in node and high - low >= 1:  # a range this wide holds multiples of 0.01
        node["multipleOf"] = DECIMALS
