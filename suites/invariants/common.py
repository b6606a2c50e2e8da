"""Building blocks shared by the OpenAI-style stream invariants (chat and legacy completions).

Each helper judges one property of a list of SSE items and returns problems as short sentences that name
the offending chunk by its position (``chunk #3`` counts data events from 1, [DONE] excluded), so a verdict
points at the bytes. Helpers never raise on hostile input: a stream that is not what they expect is judged
by the check that owns that property (JSON-ness, schema), and the others skip what they cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from wirecheck import spec
from wirecheck.spec.sse import SSEItem

from . import Problems

MAX_PROBLEMS = 20  # a broken server breaks every chunk alike; the first ones say it all


def capped(problems: list[str], limit: int = MAX_PROBLEMS) -> Problems:
    """Identical problems folded into one (with a count), then at most `limit` of them."""
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem] = counts.get(problem, 0) + 1
    folded = [p if n == 1 else f"{p} (x{n})" for p, n in counts.items()]
    if len(folded) <= limit:
        return folded
    return folded[:limit] + [f"... and {len(folded) - limit} more like these"]


def positions(found: list[int], shown: int = 3) -> str:
    """`#1, #2, #3 and 7 more`: where a problem repeats."""
    head = ", ".join(f"#{n}" for n in found[:shown])
    return head + (f" and {len(found) - shown} more" if len(found) > shown else "")


def data_events(items: list[SSEItem]) -> list[SSEItem]:
    return [it for it in items if it.kind == "event" and it.has_data]


def json_chunks(items: list[SSEItem]) -> list[tuple[int, Any]]:
    """(position, decoded value) of every JSON data event, [DONE] left out; positions count from 1."""
    out = []
    for n, item in enumerate((it for it in data_events(items) if not it.is_done), start=1):
        try:
            out.append((n, json.loads(item.data)))
        except ValueError:
            continue
    return out


def is_error_chunk(value: Any) -> bool:
    """An in-band error object (`{"error": ...}` without choices): judged by the in-band-error check only."""
    return isinstance(value, dict) and bool(value.get("error")) and not isinstance(value.get("choices"), list)


def chunks(items: list[SSEItem]) -> list[tuple[int, dict[str, Any]]]:
    """(position, chunk) of every JSON-object chunk that is not an in-band error."""
    return [(n, v) for n, v in json_chunks(items) if isinstance(v, dict) and not is_error_chunk(v)]


def choices(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    value = chunk.get("choices")
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def choice_index(choice: dict[str, Any]) -> int | None:
    index = choice.get("index")
    return index if is_int(index) else None


def is_int(value: Any) -> bool:
    """A JSON integer: Python's bool is an int, JSON's true is not."""
    return isinstance(value, int) and not isinstance(value, bool)


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------- framing


def done_sentinel(items: list[SSEItem]) -> Problems:
    events = data_events(items)
    if not events or not events[-1].is_done:
        done_at = [n for n, it in enumerate(events, start=1) if it.is_done]
        if done_at:
            return [f"{len(events) - done_at[-1]} data event(s) follow `data: [DONE]`: clients stop reading at "
                    f"[DONE] and never see them"]
        return ["the stream does not end with `data: [DONE]`"]
    if sum(1 for it in events if it.is_done) > 1:
        return ["`data: [DONE]` appears more than once"]
    return []


def data_is_json(items: list[SSEItem]) -> Problems:
    problems = []
    for item in items:
        if item.kind != "event" or item.is_done:
            continue
        if not item.has_data:
            problems.append(f"an event without data (event: {item.event!r}) is dispatched as empty JSON: {item.raw!r}")
            continue
        try:
            json.loads(item.data)
        except ValueError:
            problems.append(f"data is not JSON: {item.data[:80]!r}")
    return capped(problems)


def events_terminated(items: list[SSEItem]) -> Problems:
    return [f"an event is not terminated by a blank line, so SSE clients never dispatch it: {it.raw[:120]!r}"
            for it in items if it.kind == "event" and not it.complete]


def event_names(items: list[SSEItem], allowed: Iterable[str] = ("error",)) -> Problems:
    allowed = set(allowed)
    names: dict[str, int] = {}
    for item in items:
        if item.kind == "event" and item.event and item.event not in allowed:
            names[item.event] = names.get(item.event, 0) + 1
    return [f"{count} event(s) named `event: {name}`" for name, count in names.items()]


def in_band_errors(items: list[SSEItem]) -> Problems:
    problems = []
    for n, value in json_chunks(items):
        if not isinstance(value, dict) or not value.get("error"):
            continue
        error = value["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str) and message:
            problems.append(f"chunk #{n} is an in-band error: {message!r}")
        else:
            problems.append(f"chunk #{n} is an in-band error without `error.message` (clients show only a generic "
                            f"'An error occurred during streaming'): {short(error, 160)}")
    return problems


# ------------------------------------------------------------------------------------------------ chunks


def schema_errors(items: list[SSEItem], schema_name: str, *, strict: bool = False,
                  only_strict: bool = False) -> Problems:
    """Each JSON chunk (in-band errors aside) against a spec component; `only_strict` keeps what only
    strict mode adds, so the strict check does not repeat the plain one."""
    where: dict[str, list[int]] = {}  # message -> chunk positions, so a problem on every chunk reads once
    for n, value in json_chunks(items):
        if is_error_chunk(value):
            continue
        found = spec.errors(schema_name, value, strict=strict)
        if only_strict:
            plain = {(e.param, e.message) for e in spec.errors(schema_name, value)}
            found = [e for e in found if (e.param, e.message) not in plain]
        for error in found:
            where.setdefault(error.message, []).append(n)
    return capped([f"chunk{'s' if len(found) > 1 else ''} {positions(found)}: {message}"
                   for message, found in where.items()])


def stable_fields(items: list[SSEItem], fields: Iterable[str]) -> Problems:
    problems = []
    all_chunks = chunks(items)
    for name in fields:
        seen: dict[str, int] = {}  # json of value -> first chunk position
        for n, chunk in all_chunks:
            if name in chunk:
                seen.setdefault(json.dumps(chunk[name], sort_keys=True), n)
        if len(seen) > 1:
            examples = ", ".join(f"{value} (chunk #{n})" for value, n in list(seen.items())[:3])
            problems.append(f"`{name}` changes within one stream: {len(seen)} distinct values, e.g. {examples}")
    return problems


def finish_reason_enum(items: list[SSEItem], allowed: list[str]) -> Problems:
    problems = []
    for n, chunk in chunks(items):
        for choice in choices(chunk):
            reason = choice.get("finish_reason")
            if reason is not None and reason not in allowed:
                problems.append(f"chunk #{n}: choice {choice.get('index')} has finish_reason {short(reason)}, "
                                f"not one of {', '.join(allowed)}")
    return capped(problems)


def one_finish_per_choice(items: list[SSEItem], has_output: Callable[[dict[str, Any]], bool]) -> Problems:
    """Every choice index gets exactly one non-null finish_reason, and no output after it."""
    finishes: dict[Any, list[int]] = {}
    late: dict[Any, int] = {}
    for n, chunk in chunks(items):
        for choice in choices(chunk):
            index = choice.get("index")
            key = json.dumps(index)
            finishes.setdefault(key, [])
            ended = bool(finishes[key])
            if ended and has_output(choice) and key not in late:
                late[key] = n
            if choice.get("finish_reason") is not None:
                finishes[key].append(n)
    if not finishes:
        return ["no chunk carries a choice, so no choice ever finishes"]
    problems = []
    for key, at in finishes.items():
        if not at:
            problems.append(f"choice {key} never gets a non-null finish_reason: clients cannot tell a finished "
                            f"answer from a truncated one")
        elif len(at) > 1:
            problems.append(f"choice {key} gets a non-null finish_reason {len(at)} times (chunks "
                            f"{', '.join(f'#{n}' for n in at[:5])})")
    for key, n in late.items():
        problems.append(f"choice {key} carries more output in chunk #{n}, after its finish_reason")
    return problems


def choice_indices(items: list[SSEItem]) -> Problems:
    problems = []
    seen: set[int] = set()
    for n, chunk in chunks(items):
        in_chunk = [choice_index(c) for c in choices(chunk)]
        ints = [i for i in in_chunk if i is not None]
        if len(ints) != len(set(ints)):
            problems.append(f"chunk #{n} carries choice index {max(ints, key=ints.count)} more than once")
        seen.update(ints)
    if seen and seen != set(range(len(seen))):
        listed = ", ".join(str(i) for i in sorted(seen)[:8]) + (", ..." if len(seen) > 8 else "")
        problems.append(f"choice indices are not 0..{len(seen) - 1}: {listed} (one index per choice, numbered "
                        f"from 0, is how clients tell choices apart)")
    return problems


def usage_trailer(items: list[SSEItem]) -> Problems:
    """Usage travels in one chunk with `choices: []`, the last before [DONE], with right arithmetic."""
    all_chunks = chunks(items)
    carriers = [(n, c) for n, c in all_chunks if c.get("usage") is not None]
    problems = []
    if len(carriers) > 1:
        problems.append(f"{len(carriers)} chunks carry usage (#{', #'.join(str(n) for n, _ in carriers[:5])}); "
                        f"OpenAI sends it once, in the final chunk")
    last = all_chunks[-1][0] if all_chunks else None
    for n, chunk in carriers[:3]:
        if "choices" not in chunk:
            problems.append(f"chunk #{n} carries usage but no `choices` key; it must be `choices: []`")
        elif chunk["choices"] != []:
            count = len(chunk["choices"]) if isinstance(chunk["choices"], list) else "non-list"
            problems.append(f"chunk #{n} carries usage and {count} choice(s); the usage chunk must have "
                            f"`choices: []`")
        if n != last:
            problems.append(f"chunk #{n} carries usage but is not the last chunk before [DONE]")
        problems.extend(f"chunk #{n}: {p}" for p in usage_arithmetic(chunk["usage"]))
    return problems


def usage_arithmetic(usage: Any) -> list[str]:
    if not isinstance(usage, dict):
        return [f"usage is {short(usage)}, not an object"]
    counts = {}
    problems = []
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if is_int(value) and value >= 0:
            counts[key] = value
        else:
            problems.append(f"usage.{key} is {short(value)}, not a non-negative integer")
    if len(counts) == 3 and counts["total_tokens"] != counts["prompt_tokens"] + counts["completion_tokens"]:
        problems.append(f"usage.total_tokens is {counts['total_tokens']}, not prompt_tokens + completion_tokens "
                        f"= {counts['prompt_tokens'] + counts['completion_tokens']}")
    return problems


# -- typed-event streams (Anthropic messages, OpenAI Responses): every event's data has a string `type` --


def typed_events(items: list[SSEItem], *, skip_done: bool = False) -> list[tuple[int, SSEItem, dict[str, Any] | None]]:
    """(position, item, decoded object or None) of every data event; positions count from 1."""
    out = []
    events = (it for it in data_events(items) if not (skip_done and it.is_done))
    for n, item in enumerate(events, start=1):
        try:
            value = json.loads(item.data)
        except ValueError:
            value = None
        out.append((n, item, value if isinstance(value, dict) else None))
    return out


def event_type(value: dict[str, Any] | None) -> str | None:
    kind = value.get("type") if value else None
    return kind if isinstance(kind, str) else None


def typed_data_is_json(items: list[SSEItem]) -> Problems:
    """Each data event is a JSON object with a string `type` ([DONE] is left to its own check)."""
    problems = []
    for n, item, value in typed_events(items, skip_done=True):
        if value is None:
            problems.append(f"event #{n} data is not a JSON object: {item.data[:80]!r}")
        elif event_type(value) is None:
            problems.append(f"event #{n} has no string `type`: {item.data[:80]!r}")
    return capped(problems)


def event_names_match_types(items: list[SSEItem], *, name_required: bool) -> Problems:
    problems = []
    for n, item, value in typed_events(items, skip_done=True):
        kind = event_type(value)
        if kind is None or item.event == kind or (not item.event and not name_required):
            continue
        got = "no `event:` name" if not item.event else f"`event: {item.event}`"
        problems.append(f"event #{n} ({kind}) has {got}")
    return capped(problems)
