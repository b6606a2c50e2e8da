"""Size limits on a schema the server must enforce, checked by one cheap walk before anything is compiled.

They are OpenAI's published limits for Structured Outputs (platform.openai.com/docs/guides/structured-outputs,
"Supported schemas"): at most 5,000 object properties in all, 1,000 enum values in all, 120,000 characters of
property names, definition names, enum and const values, and 15,000 characters for one string enum of more
than 250 values. Compiling a grammar grows with these sizes, so a request past them is refused with a 400
before it costs anything; nesting is already bounded by the request body's JSON depth limit.

Also refused here: a `$ref` chain that comes back to itself without ever reaching a schema (`a -> b -> a`).
llguidance compiles such a schema lazily and only finds the dead end while decoding.
"""

from __future__ import annotations

from typing import Any

from wirecheck.spec import json_pointer

from .policy import CHILD_LISTS, CHILD_MAPS, CHILD_ONE

_MAPS, _LISTS, _ONES = frozenset(CHILD_MAPS), frozenset(CHILD_LISTS), frozenset(CHILD_ONE)
MAX_PROPERTIES = 5_000
MAX_ENUM_VALUES = 1_000
MAX_NAME_CHARS = 120_000
LARGE_ENUM = 250
MAX_LARGE_ENUM_CHARS = 15_000


def schema_limit_error(schema: Any) -> str | None:
    """Why `schema` is past the limits (what was counted against which limit), or None."""
    properties = enum_values = name_chars = 0
    followed: set[int] = set()  # pure-ref nodes already followed to a real schema: each chain is walked once
    pending = [schema]
    while pending:  # iterative: the schema is client data, its depth is not ours to recurse on
        node = pending.pop()
        if not isinstance(node, dict):
            continue
        cycle = _ref_cycle(schema, node, followed)
        if cycle:
            return f"the $ref chain {' -> '.join(cycle)} comes back to itself without reaching a schema"
        props = node.get("properties")
        if isinstance(props, dict):
            properties += len(props)
            name_chars += sum(len(str(k)) for k in props)
        for key in ("$defs", "definitions"):
            if isinstance(node.get(key), dict):
                name_chars += sum(len(str(k)) for k in node[key])
        values = node.get("enum")
        if isinstance(values, list):
            enum_values += len(values)
            strings = sum(len(v) for v in values if isinstance(v, str))
            name_chars += strings
            if len(values) > LARGE_ENUM and strings > MAX_LARGE_ENUM_CHARS:
                return (f"an enum of {len(values)} string values totals {strings} characters; an enum of more "
                        f"than {LARGE_ENUM} values may total at most {MAX_LARGE_ENUM_CHARS}")
        if isinstance(node.get("const"), str):
            name_chars += len(node["const"])
        for key, child in node.items():  # a node's own keys, not every keyword: most nodes have two or three
            if key in _MAPS and isinstance(child, dict):
                pending.extend(v for v in child.values() if isinstance(v, dict))
            elif key in _LISTS and isinstance(child, list):
                pending.extend(v for v in child if isinstance(v, dict))
            elif key in _ONES and isinstance(child, dict):
                pending.append(child)
    if properties > MAX_PROPERTIES:
        return f"the schema has {properties} object properties in all; at most {MAX_PROPERTIES} are allowed"
    if enum_values > MAX_ENUM_VALUES:
        return f"the schema has {enum_values} enum values in all; at most {MAX_ENUM_VALUES} are allowed"
    if name_chars > MAX_NAME_CHARS:
        return (f"the schema's property names, definition names, enum and const values total {name_chars} "
                f"characters; at most {MAX_NAME_CHARS} are allowed")
    return None


_ANNOTATIONS = {"$ref", "title", "description", "$comment", "examples", "default", "deprecated"}


def _ref_cycle(root: Any, node: dict[str, Any], followed: set[int]) -> list[str] | None:
    """The refs of a chain of schemas that are nothing but a `$ref` (annotations aside), starting at `node`, when it
    loops; None when it reaches a real schema (its nodes join `followed`)."""
    chain: list[str] = []
    seen: set[int] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and not (node.keys() - _ANNOTATIONS):
        if id(node) in followed:
            break
        if id(node) in seen:
            return chain
        seen.add(id(node))
        chain.append(node["$ref"])
        node = json_pointer(root, node["$ref"])
    followed |= seen
    return None
