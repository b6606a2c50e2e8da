"""Chat messages to prompt token ids through the model's own chat template."""

from __future__ import annotations

from typing import Any

from .engine.loader import LoadedModel
from .errors import invalid

_TEMPLATE_ROLE = {"developer": "system"}  # chat templates predate the developer role


def _text_of(content: Any, where: str) -> str:
    """Flatten content parts to text; a part this text-only model cannot read is refused, not dropped."""
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "input_text"):
            texts.append(part.get("text") or "")
        elif kind == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            raise invalid(f"Content parts of type '{kind}' are not supported by this model; send text parts only.",
                          param=f"{where}.content[{j}].type")
    return "".join(texts)


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "function":
            raise invalid("The deprecated 'function' role is not supported; use tool messages with tool_call_id.",
                          param=f"messages[{i}].role")
        item: dict[str, Any] = {"role": _TEMPLATE_ROLE.get(role, role),
                                "content": _text_of(message.get("content"), f"messages[{i}]")}
        if message.get("tool_calls"):
            item["tool_calls"] = message["tool_calls"]
        if role == "tool":
            item["tool_call_id"] = message.get("tool_call_id")
        if message.get("name"):
            item["name"] = message["name"]
        out.append(item)
    return out


def chat_prompt(lm: LoadedModel, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
    normalised = template_messages(messages)
    try:
        rendered = lm.tokenizer.apply_chat_template(
            normalised, tools=tools or None, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # a template can reject a history (e.g. role order); that is the client's 400
        raise invalid(f"The messages could not be rendered with this model's chat template: {exc}",
                      param="messages") from None
    return lm.tokenizer.encode(rendered, add_special_tokens=False)


def text_prompt(lm: LoadedModel, text: str) -> list[int]:
    ids = lm.tokenizer.encode(text, add_special_tokens=False)
    if not ids and lm.tokenizer.bos_token_id is not None:
        ids = [lm.tokenizer.bos_token_id]  # an empty prompt means "start of document", as OpenAI's default
    return ids
