"""tools, tool_choice, parallel_tool_calls and response_format: validated into one output plan and grammar.

The plan says what a chat answer may be (free text, JSON under a schema, tool calls) and the grammar
enforces it while sampling, so a forced call always carries schema-valid arguments and a json_schema
answer always validates. A schema the grammar engine cannot enforce is a 400 naming it, never a request
served without the constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.grammar import Grammar, GrammarCompiler, GrammarError
from ..errors import invalid


# OpenAI: "Omitting parameters defines a function with an empty parameter list."
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


@dataclass(frozen=True)
class OutputPlan:
    calls: str  # "none" | "auto" | "required" (a named tool is "required" over just that tool)
    tools: tuple[tuple[str, dict[str, Any]], ...]  # (name, parameters schema) the model may call
    params: tuple[str, ...]  # the request field each of `tools` came from, for errors
    parallel: bool
    named: bool  # a forced named tool: OpenAI then reports finish_reason "stop", not "tool_calls"
    content: dict[str, Any] | None  # JSON schema the content must match; None for free text
    constrained: bool  # whether any grammar applies (tools offered, or a JSON response format)

    @property
    def parses_calls(self) -> bool:
        return self.calls != "none"


def output_plan(body: dict[str, Any]) -> OutputPlan:
    """Validate the request's tool and format fields (the spec has checked their shapes)."""
    for legacy, modern in (("functions", "tools"), ("function_call", "tool_choice")):
        if body.get(legacy) is not None:
            raise invalid(f"The deprecated '{legacy}' parameter is not supported; use '{modern}'.", param=legacy)
    tools = body.get("tools") or []
    declared = {t["function"]["name"]: (t["function"].get("parameters"), t["function"].get("strict"), i)
                for i, t in enumerate(tools)}
    if len(declared) < len(tools):
        raise invalid("Tool names must be unique.", param="tools")
    for name, (params, strict, i) in declared.items():
        if strict:
            check_strict(params or NO_PARAMETERS, f"tools[{i}].function.parameters",
                         f"function '{name}'")
    choice = body.get("tool_choice")
    if choice is not None and not tools:
        raise invalid("'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice")
    calls, names, named = _choice(choice if choice is not None else ("auto" if tools else "none"), declared)
    content = _content_schema(body.get("response_format"))
    parallel = body.get("parallel_tool_calls") is not False
    offered = names if calls != "none" else []
    return OutputPlan(calls, tuple((name, declared[name][0] or NO_PARAMETERS) for name in offered),
                      tuple(f"tools[{declared[name][2]}].function.parameters" for name in offered),
                      parallel, named, content, bool(tools) or content is not None)


def _choice(choice: Any, declared: dict[str, tuple[Any, Any, int]]) -> tuple[str, list[str], bool]:
    if isinstance(choice, str):
        return choice, list(declared), False
    if choice.get("type") == "function":
        name = choice["function"]["name"]
        if name not in declared:
            raise invalid(f"Invalid value for 'tool_choice': no function named '{name}' was specified in 'tools'.",
                          param="tool_choice")
        return "required", [name], True
    allowed = choice["allowed_tools"]
    names = []
    for j, tool in enumerate(allowed["tools"]):
        name = (tool.get("function") or {}).get("name") if tool.get("type") == "function" else None
        if name not in declared:
            raise invalid(f"allowed_tools names a tool that is not in 'tools': {tool!r}.",
                          param=f"tool_choice.allowed_tools.tools[{j}]")
        names.append(name)
    if not names:
        raise invalid("allowed_tools must name at least one tool.", param="tool_choice.allowed_tools.tools")
    return allowed["mode"], names, False


def _content_schema(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    kind = (fmt or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    spec = fmt["json_schema"]
    schema = spec.get("schema")
    if schema is None:  # OpenAI treats a missing schema as "any JSON"; be explicit rather than guess
        raise invalid("response_format.json_schema.schema is required for type 'json_schema'.",
                      param="response_format.json_schema.schema")
    if spec.get("strict"):
        check_strict(schema, "response_format.json_schema.schema", f"response_format '{spec['name']}'")
    return schema


def check_strict(schema: Any, param: str, what: str) -> None:
    """OpenAI's strict-mode rules: every object closes its properties and requires all of them."""
    for path, node in _subschemas(schema, ()):
        if not isinstance(node, dict):
            continue
        is_object = node.get("type") == "object" or (isinstance(node.get("type"), list)
                                                     and "object" in node["type"]) or "properties" in node
        if not is_object:
            continue
        where = f"context=({', '.join(repr(p) for p in path)})"
        if node.get("additionalProperties") is not False:
            raise invalid(f"Invalid schema for {what}: In {where}, 'additionalProperties' is required to be "
                          "supplied and to be false.", param=param)
        props = node.get("properties") or {}
        missing = [key for key in props if key not in (node.get("required") or [])]
        if missing:
            raise invalid(f"Invalid schema for {what}: In {where}, 'required' is required to be supplied and to be "
                          f"an array including every key in properties. Missing '{missing[0]}'.", param=param)


def _subschemas(node: Any, path: tuple[str, ...]):
    yield path, node
    if not isinstance(node, dict):
        return
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        for name, child in (node.get(key) or {}).items():
            yield from _subschemas(child, (*path, key, name))
    for key in ("items", "additionalProperties", "not", "contains"):
        if isinstance(node.get(key), dict):
            yield from _subschemas(node[key], (*path, key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, child in enumerate(node.get(key) or []):
            yield from _subschemas(child, (*path, key, str(i)))


def output_grammar(plan: OutputPlan, compiler: GrammarCompiler) -> Grammar | None:
    """The grammar enforcing `plan`; every schema is compiled alone first so a 400 can name its field."""
    if not plan.constrained:
        return None
    if plan.content is not None:
        _compile(compiler, plan.content, "response_format.json_schema.schema")
    for (name, params), param in zip(plan.tools, plan.params):
        _compile(compiler, params, param)
    try:
        # With tool_choice none and no format, the grammar still keeps tool-call markup out of the text.
        return compiler.chat_output(content=plan.content, tools=plan.tools, calls=plan.calls,
                                    parallel=plan.parallel)
    except GrammarError as exc:
        raise invalid(f"The requested output format cannot be enforced: {exc}", param="tools") from None


def _compile(compiler: GrammarCompiler, schema: dict[str, Any], param: str) -> None:
    try:
        compiler.json_schema(schema)
    except GrammarError as exc:
        raise invalid(f"This server cannot enforce the JSON schema in {param}: {exc}", param=param) from None
