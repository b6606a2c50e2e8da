"""Load ``openapi.yaml`` and validate instances against its component schemas.

``schema(name)`` compiles ``#/components/schemas/<name>`` into a Draft 2020-12 validator whose
``$ref``s resolve inside the document (via ``referencing``). ``errors``/``first_error`` turn
jsonschema's errors into :class:`SpecError` values: the offending field as a dotted path
(``messages[0].role``) and one plain sentence, which is what an OpenAI-style 400 carries in
``error.param`` / ``error.message``.

Unions are explained by their most relevant branch: a ``discriminator`` (OpenAPI's keyword,
which jsonschema ignores) selects the branch by its tag property; otherwise the branches
whose JSON type fits the instance are preferred, and among them the one that got furthest.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SpecError",
    "document",
    "schema",
    "names",
    "errors",
    "first_error",
    "is_valid",
    "format_param",
    "DOCUMENT_URI",
]

DOCUMENT_URI = "urn:wirecheck:spec:openapi.yaml"
_SCHEMAS_POINTER = "#/components/schemas/"
_STRICT_KEY = "x-wirecheck-strict-required"
_STRICT_PATTERN_KEY = "x-wirecheck-strict-pattern"


@dataclass(frozen=True, slots=True)
class SpecError:
    """One validation failure.

    ``param`` is the offending field as a dotted path (``temperature``, ``messages[0].role``,
    ``logit_bias.50256``), or None when the instance as a whole is wrong. ``message`` is one
    sentence that names the field and says what was wrong.
    """

    param: str | None
    message: str
    # "value": well-formed JSON of the right type, but a value the contract forbids (range, enum, pattern,
    # length); "structure": a missing field, a wrong type, a form no branch accepts. Vendors that answer 422
    # for semantically invalid parameters (Hoonify) tell the two apart.
    kind: str = "structure"


# --------------------------------------------------------------------------- loading


@functools.cache
def _raw_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(doc, dict):
        raise RuntimeError("spec/openapi.yaml does not hold a mapping")
    return doc


def document() -> dict[str, Any]:
    """The parsed OpenAPI document (loaded once; treat it as read-only)."""
    return _raw_document()


@functools.cache
def _strict_document() -> dict[str, Any]:
    """The document with every ``x-wirecheck-strict-required`` merged into ``required`` and every
    ``x-wirecheck-strict-pattern`` made the ``pattern`` (the vendor's id forms)."""
    doc = copy.deepcopy(_raw_document())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            extra = node.get(_STRICT_KEY)
            if extra:
                required = list(node.get("required", []))
                node["required"] = required + [p for p in extra if p not in required]
            if _STRICT_PATTERN_KEY in node:
                node["pattern"] = node[_STRICT_PATTERN_KEY]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return doc


@functools.cache
def _registry(strict: bool) -> Registry:
    doc = _strict_document() if strict else _raw_document()
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    return Registry().with_resource(DOCUMENT_URI, resource)


def names() -> list[str]:
    """Names of all component schemas, in document order."""
    return list(_raw_document()["components"]["schemas"])


def _validator_for_ref(ref: str, strict: bool) -> Draft202012Validator:
    """A validator for a ``#/...`` pointer into the document."""
    return Draft202012Validator({"$ref": DOCUMENT_URI + ref}, registry=_registry(strict))


@functools.cache
def schema(name: str, *, strict: bool = False) -> Draft202012Validator:
    """The compiled Draft 2020-12 validator for ``#/components/schemas/<name>`` (cached).

    With ``strict=True`` the properties listed in ``x-wirecheck-strict-required`` are
    required too (what the official OpenAI specification demands beyond what SDKs need), and ids
    must take the vendor's form (``x-wirecheck-strict-pattern``).
    """
    if name not in _raw_document()["components"]["schemas"]:
        raise KeyError(f"spec/openapi.yaml has no component schema named {name!r}")
    return _validator_for_ref(_SCHEMAS_POINTER + name, strict)


@functools.cache
def _fast(name: str) -> Any:
    """A compiled (Rust) validator for the component where jsonschema_rs is installed, else None."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    registry = jsonschema_rs.Registry([(DOCUMENT_URI, _raw_document())])
    return jsonschema_rs.validator_for({"$ref": DOCUMENT_URI + _SCHEMAS_POINTER + name}, registry=registry)


def is_valid(name: str, instance: Any) -> bool:
    """Whether `instance` is a valid `name` component (not strict). A server's hot path: a compiled validator
    answers valid requests in a microsecond where the explaining one takes a quarter of a millisecond; only what
    it finds invalid is re-checked by the explaining validator, which has the last word."""
    fast = _fast(name)
    if fast is not None and fast.is_valid(instance):
        return True
    return first_error(name, instance) is None


def bounds_error(name: str, instance: Any) -> SpecError | None:
    """The first top-level field of ``instance`` longer than the ``maxItems`` / ``maxLength`` the ``name`` schema
    gives it (for a oneOf / anyOf of forms, the largest bound among the forms of that type, where every such form
    has one). Costs one look per field, whatever the body's size: a server checks this before any work that grows
    with the body (validation, templating, tokenising), so an oversized list is refused for nothing."""
    if not isinstance(instance, dict):
        return None
    for key, sub in _raw_document()["components"]["schemas"][name].get("properties", {}).items():
        value = instance.get(key)
        if isinstance(value, list):
            bound, unit = _largest(sub, "array", "maxItems"), "items"
        elif isinstance(value, str):
            bound, unit = _largest(sub, "string", "maxLength"), "characters"
        else:
            continue
        if bound is not None and len(value) > bound:
            return SpecError(key, f"Invalid '{key}': at most {bound} {unit} are accepted, got {len(value)}.",
                             kind="value")
    return None


def json_pointer(root: Any, ref: str) -> Any:
    """The node a local ``$ref`` (``#`` or ``#/a/b``, with ``~1`` / ``~0`` escapes) names in `root`; None when it
    names nothing (or is not local)."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node


def _local_ref(sub: dict[str, Any]) -> dict[str, Any]:
    """The schema a local ``$ref`` (any JSON pointer into this document, e.g. ``#/components/schemas/X/properties/y``)
    points at; the schema itself when it has none."""
    while "$ref" in sub:
        node = json_pointer(_raw_document(), sub["$ref"])
        if node is None:  # our own document: a dangling $ref is a bug in it
            raise KeyError(sub["$ref"])
        sub = node
    return sub


def _largest(sub: dict[str, Any], kind: str, keyword: str) -> int | None:
    """The bound `keyword` puts on values of JSON type `kind` under schema `sub` ($refs and one level of
    oneOf / anyOf followed); None when some form of that type is unbounded."""
    sub = _local_ref(sub)
    forms = sub.get("oneOf") or sub.get("anyOf") or [sub]
    bounds = []
    for form in map(_local_ref, forms):
        types = form.get("type")
        if kind == types or (isinstance(types, list) and kind in types):
            if keyword not in form:
                return None
            bounds.append(int(form[keyword]))
    return max(bounds) if bounds else None


# ------------------------------------------------------------------ error reporting


def errors(name: str, instance: Any, *, strict: bool = False) -> list[SpecError]:
    """Every problem with ``instance`` as a ``name`` component, most relevant first per field.

    One entry per distinct ``param`` (the first problem found for that field).
    """
    seen: set[str | None] = set()
    out: list[SpecError] = []
    for error in schema(name, strict=strict).iter_errors(instance):
        spec_error = _explain(error, (), strict)
        if spec_error.param not in seen:
            seen.add(spec_error.param)
            out.append(spec_error)
    return out


def first_error(name: str, instance: Any, *, strict: bool = False) -> SpecError | None:
    """The first problem with ``instance`` as a ``name`` component, or None when it is valid."""
    for error in schema(name, strict=strict).iter_errors(instance):
        return _explain(error, (), strict)
    return None


def format_param(path: Iterable[str | int]) -> str | None:
    """``("messages", 0, "role")`` -> ``"messages[0].role"``; the empty path -> None."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or None


def _explain(error: ValidationError, prefix: tuple, strict: bool) -> SpecError:
    """Reduce one (possibly compound) jsonschema error to a SpecError."""
    path = prefix + tuple(error.absolute_path)
    if error.validator in ("oneOf", "anyOf"):
        return _explain_union(error, path, prefix, strict)
    return _describe(error, path)


def _explain_union(error: ValidationError, path: tuple, prefix: tuple, strict: bool) -> SpecError:
    schema_ = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    discriminator = schema_.get("discriminator")
    if isinstance(discriminator, dict) and "propertyName" in discriminator:
        return _explain_discriminated(discriminator, instance, path, strict)
    if not error.context:
        # oneOf failed because several branches matched.
        param = format_param(path)
        return SpecError(param, f"Invalid value for {_name(param)}: it matches more than one of the allowed forms.")

    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def type_mismatch(subs: Sequence[ValidationError]) -> ValidationError | None:
        for sub in subs:
            if sub.validator == "type" and not sub.relative_path:
                return sub
        return None

    fitting = {i: subs for i, subs in branches.items() if type_mismatch(subs) is None}
    if not fitting:
        expected: list[str] = []
        for subs in branches.values():
            mismatch = type_mismatch(subs)
            if mismatch is not None:
                for t in _as_list(mismatch.validator_value):
                    if t not in expected:
                        expected.append(t)
        param = format_param(path)
        return SpecError(
            param,
            f"Invalid type for {_name(param)}: expected {_join_types(expected)}, got {_json_type(instance)}.",
        )

    def depth(item: tuple[int, list[ValidationError]]) -> tuple[int, int, int]:
        index, subs = item
        return (-max(len(s.absolute_path) for s in subs), len(subs), index)

    _, best = min(fitting.items(), key=depth)
    return _explain(best[0], prefix, strict)


def _explain_discriminated(discriminator: dict, instance: Any, path: tuple, strict: bool) -> SpecError:
    prop = discriminator["propertyName"]
    mapping: dict[str, str] = discriminator.get("mapping", {})
    if not isinstance(instance, dict):
        param = format_param(path)
        return SpecError(param, f"Invalid type for {_name(param)}: expected an object, got {_json_type(instance)}.")
    tag_param = format_param(path + (prop,))
    if prop not in instance:
        return SpecError(tag_param, f"Missing required field {_name(tag_param)}.")
    tag = instance[prop]
    if not isinstance(tag, str) or tag not in mapping:
        return SpecError(
            tag_param,
            f"Invalid value for {_name(tag_param)}: {_show(tag)} is not one of {_join_values(list(mapping))}.",
            "value" if isinstance(tag, str) else "structure",
        )
    for sub in _validator_for_ref(mapping[tag], strict).iter_errors(instance):
        return _explain(sub, path, strict)
    param = format_param(path)  # pragma: no cover - the branch matched but the union failed
    return SpecError(param, f"Invalid value for {_name(param)}.")


_VALUE_KEYWORDS = frozenset({"enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern",
                             "minLength", "maxLength", "minItems", "maxItems", "multipleOf", "uniqueItems",
                             "minProperties", "maxProperties", "format"})


def _describe(error: ValidationError, path: tuple) -> SpecError:
    """One leaf error -> SpecError, with a sentence per keyword."""
    found = _describe_text(error, path)
    if error.validator in _VALUE_KEYWORDS:
        return SpecError(found.param, found.message, "value")
    return found


def _describe_text(error: ValidationError, path: tuple) -> SpecError:
    kw = error.validator
    value = error.validator_value
    instance = error.instance
    if kw == "required":
        missing = _missing_property(error)
        param = format_param(path + (missing,)) if missing is not None else format_param(path)
        return SpecError(param, f"Missing required field {_name(param)}.")
    if "propertyNames" in error.absolute_schema_path:
        param = format_param(path)
        rule = f" (keys must match {value})" if kw == "pattern" else f" ({error.message})"
        return SpecError(param, f"Invalid key in {_name(param)}: {_show(instance)} is not allowed{rule}.")

    param = format_param(path)
    where = _name(param)
    if kw == "type":
        text = f"Invalid type for {where}: expected {_join_types(_as_list(value))}, got {_json_type(instance)}."
    elif kw == "enum":
        text = f"Invalid value for {where}: {_show(instance)} is not one of {_join_values(value)}."
    elif kw == "const":
        text = f"Invalid value for {where}: expected {_show(value)}, got {_show(instance)}."
    elif kw == "minimum":
        text = f"Invalid value for {where}: {_show(instance)} is below the minimum of {_show(value)}."
    elif kw == "maximum":
        text = f"Invalid value for {where}: {_show(instance)} is above the maximum of {_show(value)}."
    elif kw == "exclusiveMinimum":
        text = f"Invalid value for {where}: {_show(instance)} must be greater than {_show(value)}."
    elif kw == "exclusiveMaximum":
        text = f"Invalid value for {where}: {_show(instance)} must be less than {_show(value)}."
    elif kw == "minItems":
        if value == 1:
            text = f"Invalid value for {where}: the array must not be empty."
        else:
            text = f"Invalid value for {where}: expected at least {value} items, got {len(instance)}."
    elif kw == "maxItems":
        text = f"Invalid value for {where}: expected at most {value} items, got {len(instance)}."
    elif kw == "minLength":
        if value == 1:
            text = f"Invalid value for {where}: the string must not be empty."
        else:
            text = f"Invalid value for {where}: expected at least {value} characters, got {len(instance)}."
    elif kw == "maxLength":
        text = f"Invalid value for {where}: expected at most {value} characters, got {len(instance)}."
    elif kw == "pattern" and isinstance(error.schema, dict) and error.schema.get(_STRICT_PATTERN_KEY) == value:
        text = f"Invalid value for {where}: {_show(instance)} is not in the vendor's id form {value} (strict only)."
    elif kw == "pattern":
        text = f"Invalid value for {where}: {_show(instance)} does not match the pattern {value}."
    else:
        text = f"Invalid value for {where}: {error.message}."
    return SpecError(param, text)


def _missing_property(error: ValidationError) -> str | None:
    instance = error.instance
    if not isinstance(instance, dict):
        return None
    missing = [p for p in error.validator_value if p not in instance]
    for prop in missing:  # jsonschema reports one error per missing property
        if error.message.startswith(repr(prop)):
            return prop
    return missing[0] if missing else None


# ------------------------------------------------------------------------ wording

_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def _join_types(types: Sequence[str]) -> str:
    words = [_TYPE_WORDS.get(t, t) for t in types]
    if len(words) <= 1:
        return words[0] if words else "a different type"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _join_values(values: Iterable[Any]) -> str:
    return ", ".join(_show(v) for v in values)


def _json_type(instance: Any) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "a boolean"
    if isinstance(instance, int):
        return "an integer"
    if isinstance(instance, float):
        return "a number"
    if isinstance(instance, str):
        return "a string"
    if isinstance(instance, list):
        return "an array"
    if isinstance(instance, dict):
        return "an object"
    return type(instance).__name__


def _show(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(param: str | None) -> str:
    return f"'{param}'" if param is not None else "the body"
