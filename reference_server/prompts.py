"""Chat messages (OpenAI's, or Anthropic's converted to them) to prompt token ids through the model's own chat
template."""

from __future__ import annotations

import json
from typing import Any

from .engine.loader import LoadedModel
from .errors import invalid

_TEMPLATE_ROLE = {"developer": "system"}  # chat templates predate the developer role


def text_of(content: Any, where: str) -> str:
    """Flatten content parts (chat's, or Responses' input_text / output_text) at field `where` to text; a part
    this text-only model cannot read is refused, not dropped."""
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            texts.append(part.get("text") or "")
        elif kind == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            raise invalid(f"Content parts of type '{kind}' are not supported by this model; send text parts only.",
                          param=f"{where}[{j}].type")
    return "".join(texts)


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "function":
            raise invalid("The deprecated 'function' role is not supported; use tool messages with tool_call_id.",
                          param=f"messages[{i}].role")
        item: dict[str, Any] = {"role": _TEMPLATE_ROLE.get(role, role),
                                "content": text_of(message.get("content"), f"messages[{i}].content")}
        if message.get("tool_calls"):
            item["tool_calls"] = message["tool_calls"]
        if role == "tool":
            item["tool_call_id"] = message.get("tool_call_id")
        if message.get("name"):
            item["name"] = message["name"]
        out.append(item)
    return out


def chat_prompt(lm: LoadedModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                prefill: str = "") -> list[int]:
    """`prefill` is text the assistant's answer starts with (Anthropic's final assistant turn)."""
    normalised = template_messages(messages)
    try:
        rendered = lm.tokenizer.apply_chat_template(
            normalised, tools=tools or None, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # a template can reject a history (e.g. role order); that is the client's 400
        raise invalid(f"The messages could not be rendered with this model's chat template: {exc}",
                      param="messages") from None
    return lm.tokenizer.encode(rendered + prefill, add_special_tokens=False)


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


def text_prompt(lm: LoadedModel, text: str) -> list[int]:
    ids = lm.tokenizer.encode(text, add_special_tokens=False)
    if not ids and lm.tokenizer.bos_token_id is not None:
        ids = [lm.tokenizer.bos_token_id]  # an empty prompt means "start of document", as OpenAI's default
    return ids
