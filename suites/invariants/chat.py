"""Chat completions stream invariants (OpenAI `chat.completion.chunk` SSE).

Everything here is judged from the bytes alone; what needs the request (usage only when asked) or timing
(incremental delivery, termination) lives in suites/test_chat_stream.py.
"""

from __future__ import annotations

from typing import Any

from wirecheck import spec
from wirecheck.spec.sse import SSEItem

from . import Problems, stream_check
from . import common
from .common import capped, choice_index, choices, short

SURFACE = "chat"
CHUNK_SCHEMA = "CreateChatCompletionStreamResponse"
FINISH_REASONS: list[str] = list(spec.document()["components"]["schemas"]["ChatCompletionFinishReason"]["enum"])
OUTPUT_KEYS = ("content", "refusal", "tool_calls", "function_call")
# End-of-turn and role markers of common chat templates; a server that leaks one shows template syntax to users.
TEMPLATE_TOKENS = ("<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>",
                   "<|endoftext|>", "<end_of_turn>", "<start_of_turn>", "<|end|>")
# Llama-2/Mistral's EOS is also HTML's strikethrough close tag: only a trailing one is a leaked marker.
TRAILING_TOKENS = ("</s>",)


def chunks(items: list[SSEItem]) -> list[dict[str, Any]]:
    """Decoded JSON chunks (in-band errors and undecodable data are other checks' business)."""
    return [chunk for _, chunk in common.chunks(items)]


# ------------------------------------------------------------------------------------------------ framing


@stream_check("chat.stream.done-sentinel", surface=SURFACE, faults=("missing-done",),
              rationale="OpenAI ends chat streams with exactly one `data: [DONE]`, nothing after it; clients that "
                        "wait for it hang or report 'Connection closed before completion' without it "
                        "(ik_llama.cpp #467, text-generation-webui #4778).")
def done_sentinel(items: list[SSEItem]) -> Problems:
    return common.done_sentinel(items)


@stream_check("chat.stream.data-is-json", surface=SURFACE, faults=("keepalive-as-data",),
              rationale="The openai SDK json-decodes every data field except [DONE]: a keep-alive sent as data "
                        "(`data: : PING`, empty `data:`, an `id:`/`retry:`-only block) raises JSONDecodeError "
                        "mid-stream (openai-python #2722, llm-gateway #2053).")
def data_is_json(items: list[SSEItem]) -> Problems:
    return common.data_is_json(items)


@stream_check("chat.stream.events-terminated", surface=SURFACE, faults=("unterminated-last-event",),
              rationale="An SSE event is dispatched only at its blank line (WHATWG SSE); the openai SDK silently "
                        "drops a last event that lacks one, losing the final chunk or [DONE].")
def events_terminated(items: list[SSEItem]) -> Problems:
    return common.events_terminated(items)


@stream_check("chat.stream.event-names", surface=SURFACE,
              rationale="OpenAI chat streams carry no `event:` field: openai-python 1.x before mid-2024 (and other "
                        "Stainless-generated SDKs) yield only unnamed events, silently dropping named chunks; "
                        "current ones re-wrap `thread.*` events. Only `event: error` is understood.")
def event_names(items: list[SSEItem]) -> Problems:
    return common.event_names(items)


@stream_check("chat.stream.in-band-error", surface=SURFACE,
              rationale="A 200 stream carrying `{\"error\": ...}` failed mid-generation: the openai SDK raises "
                        "APIError with error.message, clients that only check the HTTP status record a failed turn "
                        "as success (TGI #2668, vLLM via fms-guardrails #436, OpenRouter via aider #3550).")
def in_band_error(items: list[SSEItem]) -> Problems:
    return common.in_band_errors(items)


# ------------------------------------------------------------------------------------------------- chunks


@stream_check("chat.stream.chunk-schema", surface=SURFACE, faults=("created-float",),
              rationale="Every chunk must be a `chat.completion.chunk` with string id, integer created and model: "
                        "typed clients fail to deserialize a float `created` (SambaNova, baml #1746) or a missing "
                        "`object` (LocalAI 3.10, home-llm #350).")
def chunk_schema(items: list[SSEItem]) -> Problems:
    return common.schema_errors(items, CHUNK_SCHEMA)


@stream_check("chat.stream.chunk-schema-strict", surface=SURFACE, strict=True,
              rationale="OpenAI's specification also requires `finish_reason` on every choice (null until it ends); "
                        "typed clients that follow it to the letter reject chunks without the key (LocalAI #1744).")
def chunk_schema_strict(items: list[SSEItem]) -> Problems:
    return common.schema_errors(items, CHUNK_SCHEMA, strict=True, only_strict=True)


@stream_check("chat.stream.stable-id", surface=SURFACE, faults=("per-chunk-ids",),
              rationale="All chunks of one stream share id, created and model (OpenAI spec); clients keyed on id "
                        "cannot correlate chunks minted per chunk (llama.cpp #5876, LiteLLM #1571, Foundry Local "
                        "#144).")
def stable_id(items: list[SSEItem]) -> Problems:
    return common.stable_fields(items, ("id", "created", "model"))


@stream_check("chat.stream.delta-shape", surface=SURFACE,
              rationale="Every choice carries a `delta` object whose content and refusal are strings or null: "
                        "clients concatenate them and crash on a missing delta (qwen-code #1448) or on non-string "
                        "content.")
def delta_shape(items: list[SSEItem]) -> Problems:
    problems = []
    for n, chunk in common.chunks(items):
        for choice in choices(chunk):
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                what = "no `delta`" if "delta" not in choice else f"delta {short(delta)}"
                problems.append(f"chunk #{n}: choice {choice.get('index')} has {what}, not an object")
                continue
            for key in ("content", "refusal"):
                if key in delta and delta[key] is not None and not isinstance(delta[key], str):
                    problems.append(f"chunk #{n}: choice {choice.get('index')} delta.{key} is "
                                    f"{short(delta[key])}, not a string")
    return capped(problems)


@stream_check("chat.stream.choice-index", surface=SURFACE,
              rationale="`choices[].index` numbers choices from 0 and appears once per chunk; clients assemble "
                        "choices by it, so ever-growing or duplicated indices garble the text (Foundry Local #144, "
                        "LiteLLM #3276).")
def choice_index_check(items: list[SSEItem]) -> Problems:
    return common.choice_indices(items)


# -------------------------------------------------------------------------------------------------- roles


def _first_and_later(items: list[SSEItem]) -> tuple[dict[Any, tuple[int, dict]], list[tuple[int, Any, dict]]]:
    """Per choice index: its first (chunk position, choice), and every later (position, index, choice)."""
    first: dict[Any, tuple[int, dict]] = {}
    later: list[tuple[int, Any, dict]] = []
    for n, chunk in common.chunks(items):
        for choice in choices(chunk):
            index = choice_index(choice)
            if index in first:
                later.append((n, index, choice))
            else:
                first[index] = (n, choice)
    return first, later


@stream_check("chat.stream.role-first", surface=SURFACE, faults=("no-role-chunk",),
              rationale="OpenAI's first chunk of each choice carries `delta.role: \"assistant\"` (also before tool "
                        "calls); accumulators keyed on it crash or mistype the message without it (langwatch #6214, "
                        "langchainjs #11157, LangChain ChatDatabricks #21897).")
def role_first(items: list[SSEItem]) -> Problems:
    first, _ = _first_and_later(items)
    problems = []
    for index, (n, choice) in first.items():
        delta = choice.get("delta")
        role = delta.get("role") if isinstance(delta, dict) else None
        if role != "assistant":
            got = "no role" if not isinstance(delta, dict) or "role" not in delta else f"role {short(role)}"
            problems.append(f"choice {index}'s first chunk (#{n}) has {got}, not `delta.role: \"assistant\"`")
    return problems


@stream_check("chat.stream.role-once", surface=SURFACE, faults=("role-every-chunk",),
              rationale="`delta.role` appears only in a choice's first chunk: the openai SDK's stream helper "
                        "concatenates repeated string fields, and later `role: null` deltas crash clients "
                        "(lemonade #3440).")
def role_once(items: list[SSEItem]) -> Problems:
    _, later = _first_and_later(items)
    repeats = [(n, index, choice["delta"]["role"]) for n, index, choice in later
               if isinstance(choice.get("delta"), dict) and "role" in choice["delta"]]
    if not repeats:
        return []
    n, index, role = repeats[0]
    return [f"{len(repeats)} later chunk(s) set delta.role again, first chunk #{n} (choice {index}, role "
            f"{short(role)})"]


# ------------------------------------------------------------------------------------------------- endings


@stream_check("chat.stream.finish-reason-enum", surface=SURFACE, faults=("finish-reason-eos",),
              rationale=f"finish_reason is one of {', '.join(FINISH_REASONS)} (OpenAI spec); typed clients throw "
                        "on others such as TGI's `eos_token` (async-openai, TGI #2296) or Together's `eos` "
                        "(openai-dotnet #267), and on `\"\"` (LocalAI #1744).")
def finish_reason_enum(items: list[SSEItem]) -> Problems:
    return common.finish_reason_enum(items, FINISH_REASONS)


def _has_output(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta")
    return isinstance(delta, dict) and any(delta.get(k) not in (None, "", []) for k in OUTPUT_KEYS)


@stream_check("chat.stream.one-finish-per-choice", surface=SURFACE, faults=("no-finish-reason", "double-finish"),
              rationale="Each choice gets exactly one chunk with a non-null finish_reason, its last: strict clients "
                        "raise 'stream closed before a finish_reason was received' without it (opencode #43379, "
                        "LibreChat agents #493) and mis-finalise on two.")
def one_finish_per_choice(items: list[SSEItem]) -> Problems:
    return common.one_finish_per_choice(items, _has_output)


@stream_check("chat.stream.usage-trailer-shape", surface=SURFACE, faults=("usage-chunk-with-choices",),
              rationale="With include_usage, usage arrives once, in the last chunk before [DONE], with `choices: []` "
                        "and total = prompt + completion (OpenAI spec); usage on content chunks or a trailer "
                        "without `choices` breaks clients (LocalAI #1744, ROCm ATOM #1711).")
def usage_trailer_shape(items: list[SSEItem]) -> Problems:
    return common.usage_trailer(items)


@stream_check("chat.stream.no-template-tokens", surface=SURFACE,
              rationale="Chat-template markers (`<|im_end|>`, `<|eot_id|>`, a trailing `</s>`, ...) are the server's "
                        "business: leaked into content they show up in chat UIs and break stop handling "
                        "(TGI #1724).")
def no_template_tokens(items: list[SSEItem]) -> Problems:
    texts = assembled_text(items)
    problems = []
    for index, text in texts.items():
        leaked = [t for t in TEMPLATE_TOKENS if t in text] + [t for t in TRAILING_TOKENS if text.rstrip().endswith(t)]
        if leaked:
            at = text.rfind(leaked[0])
            problems.append(f"choice {index}'s content contains {', '.join(leaked)}: "
                            f"{text[max(0, at - 30):at + 30]!r}")
    return problems


@stream_check("chat.stream.no-comments", surface=SURFACE, strict=True,
              rationale="OpenAI's own chat streams carry no SSE comments; legal as they are, `: ping` keep-alives "
                        "broke clients with naive parsers (Continue #13144, mistral-vibe #774, langchaingo #631, "
                        "openai-go #556).")
def no_comments(items: list[SSEItem]) -> Problems:
    comments = [it for it in items if it.kind == "comment"]
    if not comments:
        return []
    return [f"{len(comments)} SSE comment line(s), e.g. {comments[0].raw[:60]!r}"]


def assembled_text(items: list[SSEItem]) -> dict[int, str]:
    """Content per choice index, as a client concatenates it (for the live checks)."""
    texts: dict[int, str] = {}
    for _, chunk in common.chunks(items):
        for choice in choices(chunk):
            index = choice_index(choice)
            delta = choice.get("delta")
            if index is not None and isinstance(delta, dict) and isinstance(delta.get("content"), str):
                texts[index] = texts.get(index, "") + delta["content"]
    return texts


def has_usage(items: list[SSEItem]) -> list[int]:
    """Positions of chunks carrying a non-null usage."""
    return [n for n, chunk in common.chunks(items) if chunk.get("usage") is not None]

