"""Fault transforms, json stage: ``fn(obj, ctx) -> list[obj]`` (incl. embeddings and model helpers)."""

from __future__ import annotations

import base64
import copy
import json
import struct
from typing import Any

from .base import Context, _choices, dumps, is_usage_trailer, stop_strings, transform


# ----------------------------------------------------------------------------------------- json stage
# fn(obj, ctx) -> list of objects. Applied to non-streamed 2xx bodies and to each JSON data event.


def _json_fault(kind: str):
    return transform("json." + kind)


@_json_fault("set-field")
def set_field(obj: Any, ctx: Context) -> list[Any]:
    """Set (or with `delete: true` remove) a top-level field of every body/chunk (usage trailer skipped)."""
    if not isinstance(obj, dict) or (is_usage_trailer(obj) and not ctx.params.get("trailer", False)):
        return [obj]
    name = ctx.params["field"]
    out = dict(obj)
    if ctx.params.get("delete"):
        out.pop(name, None)
    else:
        out[name] = ctx.params.get("value")
    return [out]


@_json_fault("set-path")
def set_path(obj: Any, ctx: Context) -> list[Any]:
    """Set the field at a dotted `path` of every body (`data.*.cost`: every item of a list) to `value`: a nested
    figure an account API gets wrong (a price, a cost) while the rest of the body is right."""
    out = copy.deepcopy(obj)
    *parents, last = str(ctx.params["path"]).split(".")
    holders = [out]
    for step in parents:
        holders = [child for h in holders for child in _children(h, step)]
    for holder in holders:
        if isinstance(holder, dict) and last in holder:
            holder[last] = copy.deepcopy(ctx.params.get("value"))
    return [out]


def _children(holder: Any, step: str) -> list[Any]:
    if step == "*":
        return list(holder) if isinstance(holder, list) else []
    return [holder[step]] if isinstance(holder, dict) and step in holder else []


@_json_fault("created-float")
def created_float(obj: Any, ctx: Context) -> list[Any]:
    """`created` as a float (SambaNova): typed clients that expect an integer fail to deserialise."""
    if isinstance(obj, dict) and isinstance(obj.get("created"), int):
        obj = {**obj, "created": obj["created"] + float(ctx.params.get("fraction", 0.372))}
    return [obj]


@_json_fault("created-string")
def created_string(obj: Any, ctx: Context) -> list[Any]:
    """`created` as a string and `object` missing: a response the schema (and typed SDKs) reject."""
    if not isinstance(obj, dict):
        return [obj]
    out = {k: v for k, v in obj.items() if k not in ctx.params.get("drop", ("object",))}
    if "created" in out:
        out["created"] = str(out["created"])
    return [out]


@_json_fault("per-chunk-ids")
def per_chunk_ids(obj: Any, ctx: Context) -> list[Any]:
    """A fresh id on every chunk (early llama.cpp, LiteLLM, Foundry Local)."""
    if not isinstance(obj, dict) or "id" not in obj:
        return [obj]
    n = ctx.state["ids"] = ctx.state.get("ids", 0) + 1
    return [{**obj, "id": f"{obj['id']}{n:04d}"}]


@_json_fault("finish-reason")
def finish_reason_value(obj: Any, ctx: Context) -> list[Any]:
    """Rename finish_reason values (`stop` -> `eos` by default: Together.ai, TGI's `eos_token`)."""
    mapping = ctx.params.get("map", {"stop": "eos"})
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if choice.get("finish_reason") in mapping:
            choice["finish_reason"] = mapping[choice["finish_reason"]]
    return [out]


@_json_fault("no-finish-reason")
def no_finish_reason(obj: Any, ctx: Context) -> list[Any]:
    """No chunk carries a non-null finish_reason; a chunk that carried only the finish is dropped."""
    out = copy.deepcopy(obj)
    choices = _choices(out)
    if not any(c.get("finish_reason") is not None for c in choices):
        return [obj]
    for choice in choices:
        choice["finish_reason"] = None
    if all(not c.get("delta") and not c.get("text") for c in choices):
        return []
    return [out]


@_json_fault("double-finish")
def double_finish(obj: Any, ctx: Context) -> list[Any]:
    """The chunk carrying finish_reason is sent twice."""
    if any(c.get("finish_reason") is not None for c in _choices(obj)):
        return [obj, copy.deepcopy(obj)]
    return [obj]


@_json_fault("drop-role")
def drop_role(obj: Any, ctx: Context) -> list[Any]:
    """No delta carries `role` (a gateway dropped OpenAI's opening role chunk)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            delta.pop("role", None)
    return [out]


@_json_fault("role-every-chunk")
def role_every_chunk(obj: Any, ctx: Context) -> list[Any]:
    """Every delta repeats `role: "assistant"` (llama.cpp derivatives; the SDK accumulators then misbehave)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            choice["delta"] = {"role": ctx.params.get("role", "assistant"), **delta}
    return [out]


@_json_fault("set-choice-field")
def set_choice_field(obj: Any, ctx: Context) -> list[Any]:
    """Set a field of every choice (e.g. `logprobs: null`: logprobs asked for, never returned)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        choice[ctx.params["field"]] = copy.deepcopy(ctx.params.get("value"))
    return [out]


@_json_fault("usage-total")
def usage_total(obj: Any, ctx: Context) -> list[Any]:
    """`usage.total_tokens` counts only the completion (total != prompt + completion)."""
    usage = obj.get("usage") if isinstance(obj, dict) else None
    if not isinstance(usage, dict) or not isinstance(usage.get("completion_tokens"), int):
        return [obj]
    total = usage["completion_tokens"] + int(ctx.params.get("offset", 0))
    return [{**obj, "usage": {**usage, "total_tokens": total}}]


def _append_to_finishing(obj: Any, text: str, only: str | None = None) -> list[Any]:
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        reason = choice.get("finish_reason")
        if reason is None or (only is not None and reason != only):
            continue
        if isinstance(choice.get("message"), dict):
            msg = choice["message"]
            msg["content"] = (msg.get("content") or "") + text
        elif isinstance(choice.get("delta"), dict):
            delta = choice["delta"]
            delta["content"] = (delta.get("content") or "") + text
        elif "text" in choice:
            choice["text"] = (choice.get("text") or "") + text
    return [out]


@_json_fault("append-content")
def append_content(obj: Any, ctx: Context) -> list[Any]:
    """Append fixed text (a chat template token such as `<|im_end|>`) to every choice's content as it finishes."""
    return _append_to_finishing(obj, str(ctx.params.get("text", "<|im_end|>")))


@_json_fault("drop-empty-delta")
def drop_empty_delta(obj: Any, ctx: Context) -> list[Any]:
    """Choices whose delta is empty (the finish chunk) carry no `delta` key at all."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if choice.get("delta") == {}:
            del choice["delta"]
    return [out]


@_json_fault("choice-index")
def choice_index_offset(obj: Any, ctx: Context) -> list[Any]:
    """`choices[].index` shifted by `offset` (1 by default): numbering no longer starts at 0."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if isinstance(choice.get("index"), int):
            choice["index"] += int(ctx.params.get("offset", 1))
    return [out]


@_json_fault("drop-null-choice-field")
def drop_null_choice_field(obj: Any, ctx: Context) -> list[Any]:
    """A choice field omitted while null (`finish_reason` by default, as LocalAI did) instead of sent as null."""
    name = ctx.params.get("field", "finish_reason")
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if name in choice and choice[name] is None:
            del choice[name]
    return [out]


@_json_fault("stop-leaked")
def stop_leaked(obj: Any, ctx: Context) -> list[Any]:
    """The stop string that ended generation is returned at the end of the content (TGI's `<|im_end|>`); with
    `keep: N` only its first N characters (a server that cuts at the token where the match completed)."""
    stops = stop_strings(ctx.body)
    if not stops:
        return [obj]
    keep = ctx.params.get("keep")
    return _append_to_finishing(obj, stops[0] if keep is None else stops[0][:int(keep)], only="stop")


def _b64_floats(value: str, fmt: str = "f") -> list[float]:
    raw = base64.b64decode(value)
    size = struct.calcsize("<" + fmt)
    return list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))


def _floats_b64(values: list[float], fmt: str = "f") -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}{fmt}", *values)).decode()


def _embeddings(obj: Any) -> list[dict[str, Any]]:
    data = obj.get("data") if isinstance(obj, dict) else None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


@_json_fault("embeddings-base64-float64")
def embeddings_base64_float64(obj: Any, ctx: Context) -> list[Any]:
    """base64 embeddings packed as float64 (vLLM's first implementation) instead of little-endian float32."""
    out = copy.deepcopy(obj)
    for item in _embeddings(out):
        if isinstance(item.get("embedding"), str):
            item["embedding"] = _floats_b64(_b64_floats(item["embedding"]), "d")
    return [out]


@_json_fault("embeddings-base64-ignored")
def embeddings_base64_ignored(obj: Any, ctx: Context) -> list[Any]:
    """`encoding_format: "base64"` ignored: float arrays come back (SGLang, Infinity, TEI)."""
    out = copy.deepcopy(obj)
    for item in _embeddings(out):
        if isinstance(item.get("embedding"), str):
            item["embedding"] = _b64_floats(item["embedding"])
    return [out]


@_json_fault("embeddings-reverse")
def embeddings_reverse(obj: Any, ctx: Context) -> list[Any]:
    """Embeddings returned in reverse input order (each still carrying its own `index`)."""
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list) or len(data) < 2:
        return [obj]
    return [{**obj, "data": list(reversed(data))}]


@_json_fault("model-ids")
def model_ids(obj: Any, ctx: Context) -> list[Any]:
    """The model list names models under other ids than the ones requests use (`prefix` + id, as gateways that
    list `provider/model` while accepting the bare name)."""
    if not (isinstance(obj, dict) and obj.get("object") == "list"):
        return [obj]
    out = copy.deepcopy(obj)
    for model in _embeddings(out):
        if isinstance(model.get("id"), str):
            model["id"] = str(ctx.params.get("prefix", "openai/")) + model["id"]
    return [out]


@_json_fault("model-field")
def model_field(obj: Any, ctx: Context) -> list[Any]:
    """Drop (or set) a field of every model object, in the list and on retrieve."""
    out = copy.deepcopy(obj)
    models = _embeddings(out) if isinstance(out, dict) and out.get("object") == "list" else [out]
    for model in models:
        if not isinstance(model, dict):
            continue
        if ctx.params.get("delete"):
            model.pop(ctx.params["field"], None)
        else:
            model[ctx.params["field"]] = ctx.params.get("value")
    return [out]


# ----------------------------------------------------------------------------------------- tool calls
# Non-streamed bodies carry calls in choices[].message.tool_calls; streams carry fragments in
# choices[].delta.tool_calls. Per-stream bookkeeping lives in ctx.state (one Context per exchange).


def _tool_calls(choice: dict[str, Any], key: str) -> list[dict[str, Any]]:
    holder = choice.get(key)
    calls = holder.get("tool_calls") if isinstance(holder, dict) else None
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _function(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict):
        function = call["function"] = {}
    return function


def _decoded(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


@_json_fault("tool-arguments-object")
def tool_arguments_object(obj: Any, ctx: Context) -> list[Any]:
    """function.arguments sent as the decoded JSON object, not a string (TGI, koboldcpp); streamed, the argument
    pieces are held back and sent as one object in a chunk just before the finishing one."""
    out = copy.deepcopy(obj)
    held: dict[tuple[Any, Any], str] = ctx.state.setdefault("arguments", {})
    before: list[Any] = []
    stripped = False
    for choice in _choices(out):
        for call in _tool_calls(choice, "message"):
            _function(call)["arguments"] = _decoded(_function(call).get("arguments"))
        delta = choice.get("delta")
        for fragment in _tool_calls(choice, "delta"):
            function = _function(fragment)
            if isinstance(function.get("arguments"), str):
                key = (choice.get("index"), fragment.get("index"))
                held[key] = held.get(key, "") + function.pop("arguments")
                stripped = True
        if isinstance(delta, dict) and isinstance(delta.get("tool_calls"), list):
            kept = [f for f in delta["tool_calls"] if set(f) - {"index", "function"} or f.get("function")]
            if kept:
                delta["tool_calls"] = kept
            else:
                del delta["tool_calls"]
        if choice.get("finish_reason") is not None:
            calls = [{"index": index, "function": {"arguments": _decoded(held.pop((c, index)))}}
                     for c, index in list(held) if c == choice.get("index")]
            if calls:
                head = {k: v for k, v in out.items() if k not in ("choices", "usage")}
                before.append({**head, "choices": [{"index": choice.get("index"), "delta": {"tool_calls": calls},
                                                    "logprobs": None, "finish_reason": None}]})
    if stripped and not before and all(not c.get("delta") and c.get("finish_reason") is None for c in _choices(out)):
        return []  # the chunk carried nothing but argument pieces
    return [*before, out]


@_json_fault("tool-call-fragments")
def tool_call_fragments(obj: Any, ctx: Context) -> list[Any]:
    """Every streamed tool-call fragment repeats the call's header (`repeat`: id, type, name; all three by
    default) instead of only its first fragment (SGLang, lmdeploy, vLLM: id on every delta)."""
    repeat = set(ctx.params.get("repeat", ("id", "type", "name")))
    headers: dict[tuple[Any, Any], dict[str, Any]] = ctx.state.setdefault("headers", {})
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        for fragment in _tool_calls(choice, "delta"):
            key = (choice.get("index"), fragment.get("index"))
            if fragment.get("id") is not None:
                headers[key] = {"id": fragment["id"], "type": fragment.get("type"),
                                "name": _function(fragment).get("name")}
                continue
            header = headers.get(key)
            if header is None:
                continue
            for field in ("id", "type"):
                if field in repeat:
                    fragment[field] = header[field]
            if "name" in repeat:
                _function(fragment)["name"] = header["name"]
    return [out]


@_json_fault("tool-calls-one-index")
def tool_calls_one_index(obj: Any, ctx: Context) -> list[Any]:
    """Parallel calls squashed: streamed, every call's fragments on index 0; non-streamed, every call under the
    first call's id (Ollama, LiteLLM's ollama_chat, lmdeploy)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        calls = _tool_calls(choice, "message")
        for call in calls[1:]:
            call["id"] = calls[0].get("id")
        for fragment in _tool_calls(choice, "delta"):
            fragment["index"] = 0
    return [out]


def _call_text(name: Any, arguments: Any) -> str:
    return f"<tool_call>\n{dumps({'name': name, 'arguments': _decoded(arguments)})}\n</tool_call>"


@_json_fault("tool-calls-as-content")
def tool_calls_as_content(obj: Any, ctx: Context) -> list[Any]:
    """Tool calls left as the model's raw `<tool_call>{...}</tool_call>` text in content, with finish_reason
    'stop' (servers without a tool parser: vLLM without --enable-auto-tool-choice, mlx servers, SGLang)."""
    out = copy.deepcopy(obj)
    open_calls: set[Any] = ctx.state.setdefault("open", set())
    for choice in _choices(out):
        index = choice.get("index")
        for key in ("message", "delta"):
            holder = choice.get(key)
            calls = _tool_calls(choice, key)
            if not isinstance(holder, dict) or "tool_calls" not in holder:
                continue
            text = ""
            for call in calls:
                function = _function(call)
                if key == "message":
                    text += _call_text(function.get("name"), function.get("arguments"))
                    continue
                if call.get("id") is not None or function.get("name") is not None:
                    text += "}\n</tool_call>\n" if index in open_calls else ""
                    text += f"<tool_call>\n{{\"name\": {dumps(function.get('name'))}, \"arguments\": "
                    open_calls.add(index)
                arguments = function.get("arguments")
                text += arguments if isinstance(arguments, str) else dumps(arguments) if arguments else ""
            del holder["tool_calls"]
            holder["content"] = (holder.get("content") or "") + text
        if choice.get("finish_reason") is not None:
            if index in open_calls and isinstance(choice.get("delta"), dict):
                open_calls.discard(index)
                choice["delta"]["content"] = (choice["delta"].get("content") or "") + "}\n</tool_call>"
            if choice["finish_reason"] == "tool_calls":
                choice["finish_reason"] = "stop"
    return [out]
