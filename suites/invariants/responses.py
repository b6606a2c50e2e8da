"""OpenAI Responses stream invariants (`POST /v1/responses` with `stream: true`).

Framing, event naming, sequence numbers, the single terminal event, and the output the events build: items
and content parts referenced consistently, text deltas that add up to the `.done` text and the final
response's, function calls with a call_id whose argument deltas add up. Each judges what the stream holds
(an item never closed is judged live, by `closed_item_problems`). Event types we do not know are accepted
(the Responses API keeps adding them, and its SDKs pass unknown ones through). A `data: [DONE]` is tolerated
(OpenAI sends none; the openai SDK stops reading at it), but only as the very last event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wirecheck.spec.sse import SSEItem

from . import Problems, stream_check
from .common import (capped, data_events, event_names_match_types, event_type, is_int, short, typed_data_is_json,
                     typed_events)

SURFACE = "responses"
TERMINAL = ("response.completed", "response.failed", "response.incomplete")


@stream_check("responses.stream.data-is-json", surface=SURFACE, faults=("responses-data-keepalive",),
              rationale="Every Responses stream event's data is one JSON object with a string `type`; the openai SDK "
                        "json-decodes each and builds the event union from `type`.")
def data_is_json(items: list[SSEItem]) -> Problems:
    return typed_data_is_json(items)


@stream_check("responses.stream.event-name-matches-type", surface=SURFACE, faults=("responses-event-name-mismatch",),
              rationale="OpenAI names each Responses event after its data's `type`; clients that dispatch on the "
                        "SSE event name (EventSource listeners, several SDKs) misroute a mismatched event.")
def event_name_matches_type(items: list[SSEItem]) -> Problems:
    return event_names_match_types(items, name_required=False)


@stream_check("responses.stream.sequence-numbers", surface=SURFACE, faults=("responses-sequence-repeated",),
              rationale="Every Responses event carries an integer `sequence_number`, strictly increasing; clients "
                        "resume and de-duplicate by it (Open Responses spec; openresponses compliance suite).")
def sequence_numbers(items: list[SSEItem]) -> Problems:
    problems = []
    last: int | None = None
    for n, _, value in typed_events(items, skip_done=True):
        if value is None:
            continue
        seq = value.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(f"event #{n} ({event_type(value)}) has sequence_number {short(seq)}, not an integer")
            continue
        if last is not None and seq <= last:
            problems.append(f"event #{n} has sequence_number {seq} after {last}")
        last = seq
    return capped(problems)


@stream_check("responses.stream.created-first", surface=SURFACE, faults=("responses-created-missing",),
              rationale="A Responses stream opens with `response.created` carrying the response id; clients (Codex, "
                        "the openai SDK's stream helper) key the rest of the stream on it.")
def created_first(items: list[SSEItem]) -> Problems:
    evs = typed_events(items, skip_done=True)
    if not evs:
        return ["the stream has no events"]
    kind = event_type(evs[0][2])
    return [] if kind == "response.created" else [f"the first event is {kind or evs[0][1].data[:60]!r}, "
                                                   f"not response.created"]


@stream_check("responses.stream.terminal-event", surface=SURFACE,
              faults=("responses-double-terminal", "responses-terminal-missing"),
              rationale="A Responses stream ends with exactly one response.completed, .failed or .incomplete, as its "
                        "last event; Codex fails the turn with 'stream closed before response.completed' without it "
                        "(ollama #14600, codex #41340).")
def terminal_event(items: list[SSEItem]) -> Problems:
    evs = typed_events(items, skip_done=True)
    terminals = [(n, event_type(v)) for n, _, v in evs if event_type(v) in TERMINAL]
    if not terminals:
        return [f"no terminal event ({', '.join(TERMINAL)})"]
    problems = []
    if len(terminals) > 1:
        problems.append(f"{len(terminals)} terminal events: "
                        + ", ".join(f"{kind} (event #{n})" for n, kind in terminals[:4]))
    n, kind = terminals[-1]
    if n != evs[-1][0]:
        problems.append(f"{kind} (event #{n}) is followed by {evs[-1][0] - n} more event(s)")
    events = data_events(items)
    done_at = [k for k, it in enumerate(events) if it.is_done]
    if done_at and done_at[0] != len(events) - 1:
        problems.append(f"`data: [DONE]` is followed by {len(events) - 1 - done_at[0]} more event(s): the openai SDK "
                        f"stops reading at [DONE] and never sees them")
    return problems


@stream_check("responses.stream.in-band-error", surface=SURFACE, faults=("responses-error-midstream",),
              rationale="An `error` event (`{\"type\": \"error\", \"message\", ...}`) means the response failed after "
                        "the 200 status; SDKs raise it, status-only clients miss it (ogx #5224, openai-node #2021).")
def in_band_error(items: list[SSEItem]) -> Problems:
    problems = []
    for n, item, value in typed_events(items, skip_done=True):
        if event_type(value) == "error" or item.event == "error":
            message = (value or {}).get("message")
            if not isinstance(message, str) and isinstance((value or {}).get("error"), dict):
                message = value["error"].get("message")  # type: ignore[index]
            problems.append(f"event #{n} is an error: {message!r}" if isinstance(message, str)
                            else f"event #{n} is an error: {item.data[:160]!r}")
    return problems


# ------------------------------------------------------------------------------- the output the events build

CONTENT_EVENTS = ("response.content_part.added", "response.content_part.done", "response.output_text.delta",
                  "response.output_text.done", "response.refusal.delta", "response.refusal.done",
                  "response.function_call_arguments.delta", "response.function_call_arguments.done")
TEXT_EVENTS = ("response.output_text.delta", "response.output_text.done")


def objects(items: list[SSEItem]) -> list[tuple[int, dict[str, Any]]]:
    """(position, data) of every typed JSON event."""
    return [(n, v) for n, _, v in typed_events(items, skip_done=True) if v is not None and event_type(v)]


def final_response(items: list[SSEItem]) -> dict[str, Any] | None:
    """The response object of the last terminal event, if any."""
    for _, value in reversed(objects(items)):
        if event_type(value) in TERMINAL:
            response = value.get("response")
            return response if isinstance(response, dict) else None
    return None


def _identity(item: Any) -> tuple[Any, Any]:
    return (item.get("id"), item.get("type")) if isinstance(item, Mapping) else (None, None)


@stream_check("responses.stream.output-items", surface=SURFACE,
              faults=("responses-delta-item-ids",),
              rationale="Output items and content parts are opened once per output_index (output_item.added, "
                        "content_part.added), referenced by the same item_id in every content event, and closed by "
                        "done events naming the same item; the openai SDK's responses.stream() raises on content "
                        "for an unopened index, a duplicate index or a changed identity (wire-breakages 23).")
def item_problems(items: list[SSEItem]) -> Problems:
    """Output items and content parts as the openai SDK's stream state accumulates them: one output_item.added
    per output_index, content events only for an added item (same item_id), done events matching what was
    added (same id and type), each done once."""
    problems: list[str] = []
    added: dict[Any, tuple[Any, Any]] = {}  # output_index -> (item id, type)
    done: set[Any] = set()
    parts: set[tuple[Any, Any]] = set()
    parts_done: set[tuple[Any, Any]] = set()
    for n, value in objects(items):
        kind = event_type(value)
        index = value.get("output_index")
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = value.get("item")
            if not is_int(index) or not isinstance(item, Mapping):
                problems.append(f"event #{n} ({kind}) has output_index {short(index)} and item {short(item)}, not an "
                                f"integer and an object")
                continue
            if kind.endswith(".added"):
                if index in added:
                    problems.append(f"event #{n} adds output_index {index} a second time (the openai SDK raises "
                                    f"'Duplicate response output index')")
                added[index] = _identity(item)
            elif index not in added:
                problems.append(f"event #{n} finishes output_index {index}, which no output_item.added opened")
            else:
                if _identity(item) != added[index]:
                    problems.append(f"event #{n}: the item done at output_index {index} is {short(_identity(item))}, "
                                    f"not the {short(added[index])} added there (the SDK raises 'Completed output "
                                    f"item identity changed')")
                if index in done:
                    problems.append(f"event #{n} finishes output_index {index} a second time")
                done.add(index)
            continue
        if kind not in CONTENT_EVENTS:
            continue
        if index not in added:
            problems.append(f"event #{n} ({kind}) is for output_index {short(index)} before any output_item.added "
                            f"opened it (the SDK raises 'Received a content event ... before receiving its output "
                            f"item')")
            continue
        if value.get("item_id") != added[index][0]:
            problems.append(f"event #{n} ({kind}) names item_id {short(value.get('item_id'))}, but output_index "
                            f"{index} holds item {short(added[index][0])}")
        if index in done:
            problems.append(f"event #{n} ({kind}) comes after output_index {index} was done")
        key = (index, value.get("content_index"))
        if kind == "response.content_part.added":
            if key in parts:
                problems.append(f"event #{n} adds content part {key[1]} of output_index {index} a second time")
            parts.add(key)
        elif kind == "response.content_part.done":
            if key not in parts:
                problems.append(f"event #{n} finishes content part {short(key[1])} of output_index {index}, which no "
                                f"content_part.added opened")
            elif key in parts_done:
                problems.append(f"event #{n} finishes content part {key[1]} of output_index {index} a second time")
            parts_done.add(key)
    return capped(problems)


def closed_item_problems(items: list[SSEItem]) -> Problems:
    """A stream that completes (or stops at max_output_tokens) closes what it opened: every text event targets a
    content part that content_part.added opened, every added part and item gets its done event before the
    terminal one, and the final response's output holds every finished item (the SDK's get_final_response()
    reads output from it: an empty list loses the answer)."""
    final = final_response(items)
    evs = objects(items)
    if final is None or evs[-1][1].get("type") == "response.failed":
        return []
    problems: list[str] = []
    added: dict[Any, tuple[Any, Any]] = {}
    done: set[Any] = set()
    parts: set[tuple[Any, Any]] = set()
    parts_done: set[tuple[Any, Any]] = set()
    for n, value in evs:
        kind = event_type(value)
        key = (value.get("output_index"), value.get("content_index"))
        if kind == "response.output_item.added":
            added[key[0]] = _identity(value.get("item"))
        elif kind == "response.output_item.done":
            done.add(key[0])
        elif kind == "response.content_part.added":
            parts.add(key)
        elif kind == "response.content_part.done":
            parts_done.add(key)
        elif kind in TEXT_EVENTS and key not in parts:
            problems.append(f"event #{n} ({kind}) targets content part {short(key[1])} of output_index "
                            f"{short(key[0])}, which no content_part.added opened (the SDK's stream helper fails "
                            f"indexing it)")
    problems += [f"content part {c} of output_index {i} is added but never done" for i, c in sorted(parts - parts_done,
                                                                                                   key=str)]
    problems += [f"output_index {i} ({short(added[i])}) is added but never done" for i in sorted(set(added) - done,
                                                                                                key=str)]
    output = final.get("output")
    final_ids = {_identity(item) for item in output} if isinstance(output, list) else set()
    missing = [identity for index, identity in added.items() if index in done and identity not in final_ids]
    if missing:
        problems.append(f"the final response's output lacks {len(missing)} streamed item(s) ({short(missing)}): "
                        f"get_final_response() returns output without them")
    return capped(problems)


def text_parts(item: Any) -> list[tuple[int, str]]:
    """(content index, text) of the output_text parts of a message item."""
    content = item.get("content") if isinstance(item, Mapping) else None
    return [(k, part["text"]) for k, part in enumerate(content if isinstance(content, list) else [])
            if isinstance(part, Mapping) and part.get("type") == "output_text" and isinstance(part.get("text"), str)]


@stream_check("responses.stream.output-text", surface=SURFACE,
              faults=("responses-text-done-mismatch",),
              rationale="The output_text.delta pieces of a content part concatenate to its output_text.done text, "
                        "its content_part.done and output_item.done text and the final response's text: clients "
                        "render the deltas and store the final text, and must not disagree (wire-breakages 23).")
def output_text_problems(items: list[SSEItem]) -> Problems:
    """Per (item_id, content_index), the output_text.delta pieces concatenate to the output_text.done text, the
    content_part.done part's text, the output_item.done message's text and the final response's text."""
    problems: list[str] = []
    streamed: dict[tuple[Any, Any], str] = {}
    for n, value in objects(items):
        kind = event_type(value)
        key = (value.get("item_id"), value.get("content_index"))
        if kind == "response.output_text.delta":
            if not isinstance(value.get("delta"), str):
                problems.append(f"event #{n} (output_text.delta) has delta {short(value.get('delta'))}, not a string")
                continue
            streamed[key] = streamed.get(key, "") + value["delta"]
        elif kind == "response.output_text.done":
            if value.get("text") != streamed.get(key, ""):
                problems.append(f"event #{n}: output_text.done text {short(value.get('text'))} is not the "
                                f"concatenated deltas {short(streamed.get(key, ''))}")
        elif kind == "response.content_part.done":
            part = value.get("part")
            if isinstance(part, Mapping) and part.get("type") == "output_text" and part.get("text") != streamed.get(
                    key, ""):
                problems.append(f"event #{n}: content_part.done text {short(part.get('text'))} is not the "
                                f"concatenated deltas {short(streamed.get(key, ''))}")
        elif kind == "response.output_item.done":
            item = value.get("item")
            for k, text in text_parts(item):
                if text != streamed.get((item.get("id"), k), ""):
                    problems.append(f"event #{n}: the finished message's text {short(text)} is not the concatenated "
                                    f"deltas {short(streamed.get((item.get('id'), k), ''))}")
    final = final_response(items)
    output = final.get("output") if final else None
    for item in output if isinstance(output, list) else []:
        for k, text in text_parts(item):
            key = (item.get("id"), k)
            if key in streamed and text != streamed[key]:
                problems.append(f"the final response's text {short(text)} is not the concatenated deltas "
                                f"{short(streamed[key])}")
    return capped(problems)


def call_id_problems(item: Any, where: str) -> list[str]:
    """A function_call item names its call (call_id) and function (name): the caller answers with a
    function_call_output carrying that call_id."""
    problems = []
    for key in ("call_id", "name"):
        if not isinstance(item.get(key), str) or not item[key]:
            problems.append(f"{where}: the function_call item has {key} {short(item.get(key))}, not a non-empty "
                            f"string" + (": its output cannot be sent back" if key == "call_id" else ""))
    return problems


def streamed_calls(items: list[SSEItem]) -> dict[Any, dict[str, Any]]:
    """Item id -> what the stream said about that function call: `added` and `item` ((event #, arguments) of
    output_item.added and .done), `done` (of function_call_arguments.done), the concatenated `deltas` and how
    many `pieces` there were."""
    calls: dict[Any, dict[str, Any]] = {}

    def call(item_id: Any) -> dict[str, Any]:
        return calls.setdefault(item_id, {"deltas": "", "pieces": 0, "done": None, "added": None, "item": None})

    for n, value in objects(items):
        kind, item = event_type(value), value.get("item")
        if kind in ("response.output_item.added", "response.output_item.done") and isinstance(item, Mapping) \
                and item.get("type") == "function_call":
            call(item.get("id"))["added" if kind.endswith(".added") else "item"] = (n, item.get("arguments"))
        elif kind == "response.function_call_arguments.delta":
            found = call(value.get("item_id"))
            if isinstance(value.get("delta"), str):
                found["deltas"] += value["delta"]
                found["pieces"] += 1
        elif kind == "response.function_call_arguments.done":
            call(value.get("item_id"))["done"] = (n, value.get("arguments"))
    return calls


@stream_check("responses.stream.function-calls", surface=SURFACE,
              faults=("responses-call-id-missing", "responses-arguments-object"),
              rationale="A streamed function_call item carries call_id and name, ends with a "
                        "function_call_arguments.done, and any function_call_arguments.delta pieces are strings that "
                        "concatenate to the .done arguments and the finished item's. Typed clients drop a call "
                        "without call_id (stella #5854); openai-python's stream helper and the Vercel AI SDK build the "
                        "call from the finished item, so pieces that disagree with it hand clients two answers.")
def function_call_problems(items: list[SSEItem]) -> Problems:
    problems: list[str] = []
    for n, value in objects(items):
        kind, item = event_type(value), value.get("item")
        if kind in ("response.output_item.added", "response.output_item.done") and isinstance(item, Mapping) \
                and item.get("type") == "function_call":
            problems += call_id_problems(item, f"event #{n} ({kind})")
        elif kind == "response.function_call_arguments.delta" and not isinstance(value.get("delta"), str):
            problems.append(f"event #{n} (function_call_arguments.delta) has delta {short(value.get('delta'))}, "
                            f"not a string")
    calls = streamed_calls(items)
    for item_id, call in calls.items():
        if call["item"] is None:
            continue
        n, arguments = call["item"]
        if call["done"] is None:
            problems.append(f"function call {short(item_id)} finished (event #{n}) without a "
                            f"function_call_arguments.done event")
        elif call["pieces"] and call["done"][1] != call["deltas"]:
            problems.append(f"event #{call['done'][0]}: function_call_arguments.done arguments "
                            f"{short(call['done'][1])} are not the concatenated deltas {short(call['deltas'])}")
        if call["pieces"] and arguments != call["deltas"]:
            problems.append(f"event #{n}: the finished call's arguments {short(arguments)} are not the concatenated "
                            f"deltas {short(call['deltas'])}")
        if not isinstance(arguments, str):
            problems.append(f"event #{n}: the finished call's arguments are {short(arguments)}, not a JSON string")
    final = final_response(items)
    output = final.get("output") if final else None
    for k, item in enumerate(output if isinstance(output, list) else []):
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            problems += call_id_problems(item, f"the final response's output[{k}]")
            streamed = calls.get(item.get("id"))
            if streamed and streamed["pieces"] and item.get("arguments") != streamed["deltas"]:
                problems.append(f"the final response's output[{k}] arguments {short(item.get('arguments'))} are not "
                                f"the concatenated deltas {short(streamed['deltas'])}")
    return capped(problems)


@stream_check("responses.stream.arguments-streamed", surface=SURFACE, strict=True,
              faults=("responses-arguments-delta-missing",),
              rationale="api.openai.com streams a call's arguments as function_call_arguments.delta pieces after an "
                        "output_item.added whose arguments are empty (Open Responses compliance: tool-calling-"
                        "streaming). UIs that render arguments as they arrive show nothing without them; the SDKs "
                        "read the finished item, so only --strict asks.")
def arguments_streamed(items: list[SSEItem]) -> Problems:
    problems = []
    for item_id, call in streamed_calls(items).items():
        if call["pieces"] or call["item"] is None or not call["item"][1]:
            continue
        added = call["added"]
        where = (f"whole in output_item.added (event #{added[0]})" if added and added[1]
                 else f"only when it finished (event #{call['item'][0]})")
        problems.append(f"function call {short(item_id)} streamed no function_call_arguments.delta: its arguments "
                        f"{short(call['item'][1])} came {where}")
    return problems


def usage_problems(usage: Any, where: str = "usage") -> list[str]:
    """Responses usage: non-negative integer input_tokens, output_tokens, total_tokens = input + output."""
    if not isinstance(usage, Mapping):
        return [f"{where} is {short(usage)}, not an object"]
    problems = [f"{where}.{key} is {short(usage.get(key))}, not a non-negative integer"
                for key in ("input_tokens", "output_tokens", "total_tokens")
                if not is_int(usage.get(key)) or usage[key] < 0]
    if not problems and usage["total_tokens"] != usage["input_tokens"] + usage["output_tokens"]:
        problems.append(f"{where}.total_tokens is {usage['total_tokens']}, not input_tokens + output_tokens = "
                        f"{usage['input_tokens'] + usage['output_tokens']}")
    return problems


@stream_check("responses.stream.usage", surface=SURFACE,
              faults=("responses-usage-total",),
              rationale="The terminal response's usage holds integer input_tokens and output_tokens with "
                        "total_tokens = input + output; metering reads it from response.completed.")
def stream_usage(items: list[SSEItem]) -> Problems:
    final = final_response(items)
    if final is None or final.get("usage") is None:
        return []
    return usage_problems(final["usage"], "the final response's usage")
