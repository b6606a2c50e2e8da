"""Chat messages (OpenAI's, or Anthropic's converted to them) to prompt token ids through the model's own chat
template."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .engine.loader import LoadedModel
from .engine.media import Media
from .errors import context_exceeded_at_least, invalid

_TEMPLATE_ROLE = {"developer": "system"}  # chat templates predate the developer role
# Chat content parts that carry media, and the modality each needs the model to accept.
MEDIA_PARTS = {"image_url": "image", "input_audio": "audio"}


def text_of(content: Any, where: str, markers: Mapping[int, str] | None = None) -> str:
    """Flatten content parts (chat's, or Responses' input_text / output_text) at field `where` to text; part j
    listed in `markers` (media) becomes its marker text; any other part this model cannot read is refused, not
    dropped."""
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            texts.append(part.get("text") or "")
        elif kind == "refusal":
            texts.append(part.get("refusal") or "")
        elif markers and j in markers:
            texts.append(markers[j])
        else:
            raise invalid(f"Content parts of type '{kind}' are not supported by this model; send text parts only.",
                          param=f"{where}[{j}].type")
    return "".join(texts)


def template_messages(messages: list[dict[str, Any]],
                      markers: Mapping[tuple[int, int], str] | None = None) -> list[dict[str, Any]]:
    """Messages as the chat template takes them; the media part at (message i, part j) in `markers` becomes
    that marker's text."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "function":
            raise invalid("The deprecated 'function' role is not supported; use tool messages with tool_call_id.",
                          param=f"messages[{i}].role")
        mine = {j: text for (m, j), text in (markers or {}).items() if m == i}
        item: dict[str, Any] = {"role": _TEMPLATE_ROLE.get(role, role),
                                "content": text_of(message.get("content"), f"messages[{i}].content", mine)}
        if message.get("tool_calls"):
            item["tool_calls"] = message["tool_calls"]
        if role == "tool":
            item["tool_call_id"] = message.get("tool_call_id")
        if message.get("name"):
            item["name"] = message["name"]
        out.append(item)
    return out


def _render(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tools=tools or None, add_generation_prompt=True,
                                             tokenize=False)
    except Exception as exc:  # a template can reject a history (e.g. role order); that is the client's 400
        raise invalid(f"The messages could not be rendered with this model's chat template: {exc}",
                      param="messages") from None


def chat_prompt(lm: LoadedModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                prefill: str = "", bound: bool = True) -> list[int]:
    """`prefill` is text the assistant's answer starts with (Anthropic's final assistant turn). `bound`: refuse a
    prompt that cannot fit the context before tokenizing it (counting endpoints pass False: they owe the count)."""
    templated = template_messages(messages)
    if bound:
        _refuse_oversized(lm, len(prefill) + rendered_at_least(templated, tools), "messages")
    rendered = _render(lm.tokenizer, templated, tools) + prefill
    return encode(lm, rendered, "messages") if bound else lm.tokenizer.encode(rendered, add_special_tokens=False)


def rendered_at_least(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """Characters a chat template surely renders: message texts and tool names and descriptions (every
    template writes these; other fields it may drop). Rendering megabytes of tools is seconds of Jinja."""
    size = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict):
            size += sum(len(v) for v in (function.get("name"), function.get("description")) if isinstance(v, str))
    return size


def _refuse_oversized(lm: LoadedModel, chars: int, param: str) -> None:
    if chars > lm.context_window * lm.max_token_bytes:  # characters: at most the UTF-8 byte count
        raise context_exceeded_at_least(lm.context_window, chars // lm.max_token_bytes, param)


def encode(lm: LoadedModel, text: str, param: str) -> list[int]:
    """Token ids of `text`, or a context_length_exceeded 400 when its length alone proves it cannot fit: a
    megabyte of text is a second of tokenizing, and it is refused in microseconds instead."""
    _refuse_oversized(lm, len(text), param)
    return lm.tokenizer.encode(text, add_special_tokens=False)


# --- media in chat -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRef:
    """A media content part of a request: where it is and what it holds (before any bytes are fetched)."""

    message: int
    part: int
    kind: str  # "image" | "audio"
    body: dict[str, Any]  # the part's image_url / input_audio object

    @property
    def where(self) -> str:
        return f"messages[{self.message}].content[{self.part}]"


def media_refs(model_id: str, accepts: frozenset[str], messages: list[dict[str, Any]]) -> list[MediaRef]:
    """The media parts of `messages`, in order; a part of a modality the model does not accept is a 400 naming
    it (other unknown parts are left to `text_of`, which refuses them the same way)."""
    refs: list[MediaRef] = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            kind = MEDIA_PARTS.get(part.get("type"))
            if kind is None:
                continue
            if kind not in accepts or message.get("role") != "user":
                lacks = f"model '{model_id}' does not accept {kind} input" if kind not in accepts else \
                    f"{kind} input is only accepted in user messages"
                raise invalid(f"Content parts of type '{part.get('type')}' cannot be used: {lacks}.",
                              param=f"messages[{i}].content[{j}].type", code="unsupported_content_type")
            refs.append(MediaRef(i, j, kind, part[part["type"]]))
    return refs


@dataclass
class Prompt:
    """Prompt token ids, and the media whose embeddings replace the placeholder runs starting at `offset`."""

    ids: list[int]
    media: list[tuple[int, Media]] = field(default_factory=list)


def media_prompt(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                 media: Mapping[tuple[int, int], Media], placeholder: int) -> Prompt:
    """The chat prompt with each media part as a run of `placeholder` ids (one per media token). Media parts are
    templated as marker texts carrying a per-call nonce, so no client text can forge one, then the rendered text
    is tokenized piece by piece between the markers."""
    nonce = secrets.token_hex(8)
    order = list(media)
    markers = {key: f"<|media-{nonce}-{k}|>" for k, key in enumerate(order)}
    rendered = _render(tokenizer, template_messages(messages, markers), tools)
    pieces = re.split(f"<\\|media-{nonce}-(\\d+)\\|>", rendered)
    ids: list[int] = []
    spans: list[tuple[int, Media]] = []
    for k, piece in enumerate(pieces):
        if k % 2 == 0:
            ids += tokenizer.encode(piece, add_special_tokens=False) if piece else []
        else:
            item = media[order[int(piece)]]
            spans.append((len(ids), item))
            ids += [placeholder] * item.tokens
    return Prompt(ids, spans)


def placeholder_id(lm: LoadedModel) -> int:
    """The id that stands in the prompt for each media token; its own embedding is never used."""
    pad = lm.tokenizer.pad_token_id
    return int(pad if pad is not None else lm.eos_ids[0])


def _unsupported_block(kind: Any, param: str) -> Exception:
    return invalid(f"Content blocks of type '{kind}' are not supported by this model; send text, tool_use and "
                   "tool_result blocks.", param=param)


def _block_text(content: Any, where: str) -> str:
    """A system prompt or a tool_result's content: a string or text blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for j, block in enumerate(content):
        if block.get("type") != "text":
            raise _unsupported_block(block.get("type"), f"{where}[{j}].type")
        texts.append(block["text"])
    return "".join(texts)


def anthropic_chat(system: Any, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Anthropic's system and messages as chat-template messages, and the prefill: the text of a final
    assistant turn, which the answer continues. tool_use blocks become the assistant's tool_calls; each
    tool_result becomes a tool message, in the order the blocks come."""
    out: list[dict[str, Any]] = []
    system_text = _block_text(system, "system")
    if system_text:
        out.append({"role": "system", "content": system_text})
    for i, message in enumerate(messages):
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        text, calls, results = "", [], 0
        for j, block in enumerate(blocks):
            kind, where = block.get("type"), f"messages[{i}].content[{j}]"
            if kind == "text":
                text += block["text"]
            elif kind == "tool_use" and message["role"] == "assistant":
                calls.append({"id": block["id"], "type": "function", "function": {
                    "name": block["name"], "arguments": json.dumps(block["input"], ensure_ascii=False)}})
            elif kind in ("thinking", "redacted_thinking") and message["role"] == "assistant":
                continue  # earlier turns' thinking is not part of the context (as Anthropic strips it)
            elif kind == "tool_result" and message["role"] == "user":
                if text:  # text before a result keeps its place
                    out.append({"role": "user", "content": text})
                    text = ""
                result = _block_text(block.get("content"), f"{where}.content")
                out.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                            "content": "Error: " + result if block.get("is_error") else result})
                results += 1
            else:
                raise _unsupported_block(kind, f"{where}.type")
        if message["role"] == "assistant":
            out.append({"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})})
        elif text or not results:
            out.append({"role": "user", "content": text})
    prefill = ""
    if messages and messages[-1]["role"] == "assistant" and not out[-1].get("tool_calls"):
        prefill = out.pop()["content"]
        if not out:
            raise invalid("messages: the conversation needs a user turn before a final assistant (prefill) turn.",
                          param="messages")
    return out, prefill


def text_prompt(lm: LoadedModel, text: str, param: str = "prompt") -> list[int]:
    ids = encode(lm, text, param)
    if not ids and lm.tokenizer.bos_token_id is not None:
        ids = [lm.tokenizer.bos_token_id]  # an empty prompt means "start of document", as OpenAI's default
    return ids
