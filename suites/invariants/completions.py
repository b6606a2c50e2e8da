"""Legacy completions stream invariants (`/v1/completions` with `stream: true`, `text_completion` chunks)."""

from __future__ import annotations

from typing import Any

from wirecheck import spec
from wirecheck.spec.sse import SSEItem

from . import Problems, stream_check
from . import common

SURFACE = "completions"
CHUNK_SCHEMA = "CreateCompletionStreamResponse"
FINISH_REASONS: list[str] = [r for r in spec.document()["components"]["schemas"]["CompletionChoice"]["properties"]
                             ["finish_reason"]["enum"] if r is not None]


@stream_check("completions.stream.done-sentinel", surface=SURFACE, faults=("completions-missing-done",),
              rationale="OpenAI ends completions streams with exactly one `data: [DONE]`; clients that wait for it "
                        "hang or treat the stream as truncated without it (oobabooga textgen #4778).")
def done_sentinel(items: list[SSEItem]) -> Problems:
    return common.done_sentinel(items)


@stream_check("completions.stream.data-is-json", surface=SURFACE,
              rationale="The openai SDK json-decodes every data field except [DONE]; a non-JSON or data-less event "
                        "raises JSONDecodeError in the client (openai-python #2722).")
def data_is_json(items: list[SSEItem]) -> Problems:
    return common.data_is_json(items)


@stream_check("completions.stream.events-terminated", surface=SURFACE,
              rationale="An SSE event is dispatched only at its blank line (WHATWG SSE); the openai SDK silently "
                        "drops a last event without one.")
def events_terminated(items: list[SSEItem]) -> Problems:
    return common.events_terminated(items)


@stream_check("completions.stream.event-names", surface=SURFACE,
              rationale="OpenAI completions streams carry no `event:` field; older openai-python 1.x and other "
                        "Stainless-generated SDKs silently drop named events.")
def event_names(items: list[SSEItem]) -> Problems:
    return common.event_names(items)


@stream_check("completions.stream.in-band-error", surface=SURFACE,
              rationale="A 200 stream carrying `{\"error\": ...}` failed mid-generation; clients that only check the "
                        "HTTP status record it as success (TGI #2668, vLLM via fms-guardrails #436).")
def in_band_error(items: list[SSEItem]) -> Problems:
    return common.in_band_errors(items)


@stream_check("completions.stream.chunk-schema", surface=SURFACE, faults=("completions-chunk-object",),
              rationale="Every chunk is a `text_completion` object with choices[].text (OpenAI spec); a chat-style "
                        "`object` or missing fields break typed clients and accumulators (LiteLLM #14429).")
def chunk_schema(items: list[SSEItem]) -> Problems:
    return common.schema_errors(items, CHUNK_SCHEMA)


@stream_check("completions.stream.chunk-schema-strict", surface=SURFACE, strict=True,
              rationale="OpenAI's specification also requires `finish_reason` (null until the choice ends) and "
                        "`logprobs` (null when not asked) on every choice; clients generated from it reject choices "
                        "without the keys. The SDKs read an absent key as null, so only strict mode asks (as for chat).")
def chunk_schema_strict(items: list[SSEItem]) -> Problems:
    return common.schema_errors(items, CHUNK_SCHEMA, strict=True, only_strict=True)


@stream_check("completions.stream.stable-id", surface=SURFACE,
              rationale="All chunks share one id, created and model; strict accumulators discard chunks "
                        "with fresh ids (Rapid-MLX #752, omlx #2462, LiteLLM #14429).")
def stable_id(items: list[SSEItem]) -> Problems:
    return common.stable_fields(items, ("id", "created", "model"))


@stream_check("completions.stream.choice-index", surface=SURFACE,
              rationale="`choices[].index` numbers choices from 0 (n x prompts) and appears once per chunk; clients "
                        "assemble texts by it.")
def choice_index(items: list[SSEItem]) -> Problems:
    return common.choice_indices(items)


@stream_check("completions.stream.finish-reason-enum", surface=SURFACE,
              rationale=f"finish_reason is one of {', '.join(FINISH_REASONS)} (OpenAI spec); typed clients throw "
                        "on others such as `eos` or `eos_token` (openai-dotnet #267, TGI #2296).")
def finish_reason_enum(items: list[SSEItem]) -> Problems:
    return common.finish_reason_enum(items, FINISH_REASONS)


def _has_output(choice: dict[str, Any]) -> bool:
    return isinstance(choice.get("text"), str) and choice["text"] != ""


@stream_check("completions.stream.one-finish-per-choice", surface=SURFACE,
              rationale="Each choice gets exactly one chunk with a non-null finish_reason, its last; without it "
                        "clients cannot tell a finished completion from a truncated stream.")
def one_finish_per_choice(items: list[SSEItem]) -> Problems:
    return common.one_finish_per_choice(items, _has_output)


@stream_check("completions.stream.usage-trailer-shape", surface=SURFACE,
              rationale="With include_usage, usage arrives once, in the last chunk before [DONE], with `choices: []` "
                        "and total = prompt + completion (OpenAI spec); metering gateways read exactly that chunk "
                        "(private-ai-gateway #80).")
def usage_trailer_shape(items: list[SSEItem]) -> Problems:
    return common.usage_trailer(items)


def has_usage(items: list[SSEItem]) -> list[int]:
    return [n for n, chunk in common.chunks(items) if chunk.get("usage") is not None]
