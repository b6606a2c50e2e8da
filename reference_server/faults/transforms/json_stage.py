"""Fault transforms, json stage: ``fn(obj, ctx) -> list[obj]`` (incl. embeddings and model helpers)."""

from __future__ import annotations

import base64
import copy
import struct
from typing import Any

from .base import Context, _choices, is_usage_trailer, stop_strings, transform


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
    """The stop string that ended generation is returned at the end of the content (TGI's `<|im_end|>`)."""
    stops = stop_strings(ctx.body)
    if not stops:
        return [obj]
    return _append_to_finishing(obj, stops[0], only="stop")


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
