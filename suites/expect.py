"""Small helpers the request/response checks share: turn an exchange into JSON or SSE items, or fail clearly."""

from __future__ import annotations

import re
from typing import Any

import pytest

from wirecheck.spec.sse import SSEItem

from .judge import envelope_problems, error_field
from .registry import fail
from .wire import Exchange


def snippet(ex: Exchange, limit: int = 300) -> str:
    return ex.body[:limit].decode("utf-8", errors="replace")


def expect_ok(ex: Exchange, what: str = "the request", ok: tuple[int, ...] = (200,)) -> None:
    if ex.error or ex.timed_out or ex.too_large:
        fail(f"{what}: {ex.describe()}", ex.evidence())
    if ex.status not in ok:
        fail(f"{what} got HTTP {ex.status}, not {' or '.join(map(str, ok))}: {snippet(ex)}", ex.evidence())


def expect_no_problems(ex: Exchange, problems: list[str]) -> None:
    """Fail with the first few problems as the message and up to 20 as evidence; pass when there are none."""
    if problems:
        fail("; ".join(problems[:5]), ex.evidence(*problems[:20]))


def expect_json(ex: Exchange, what: str = "the request", ok: tuple[int, ...] = (200,)) -> Any:
    """The JSON body of a 200 (or another `ok` status) `ex`, or a failure that shows what came instead."""
    expect_ok(ex, what, ok)
    try:
        return ex.json()
    except ValueError:
        fail(f"{what}: the {ex.status} body is not JSON ({ex.content_type!r}): {snippet(ex)}", ex.evidence())


def expect_object(ex: Exchange, what: str = "the request", ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    body = expect_json(ex, what, ok)
    if not isinstance(body, dict):
        fail(f"{what}: the body is {type(body).__name__}, not a JSON object", ex.evidence())
    return body


def first_choice(body: dict[str, Any], ex: Exchange) -> dict[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        fail(f"the response has no choices: choices={choices!r}", ex.evidence())
    return choices[0]


def message_content(choice: dict[str, Any], ex: Exchange) -> str | None:
    message = choice.get("message")
    if not isinstance(message, dict):
        fail(f"choice.message is {message!r}, not an object", ex.evidence())
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        fail(f"message.content is {type(content).__name__}, not a string or null", ex.evidence())
    return content


def expect_stream(ex: Exchange, what: str = "the streamed request") -> list[SSEItem]:
    expect_ok(ex, what)
    return ex.items()


def expect_each(found: list[tuple[Exchange, list[str]]]) -> None:
    """Fail with the problems of every exchange together (each was tried whatever the others showed), with the
    first offending exchange as evidence."""
    problems = [p for _, ps in found for p in ps]
    if problems:
        first = next(ex for ex, ps in found if ps)
        fail("; ".join(problems), first.evidence(*problems))


def expect_client_error_naming(ex: Exchange, name: str | tuple[str, ...], what: str, *, strict: bool = False,
                               status: int | None = None) -> None:
    """A 4xx (exactly `status` when given) in the error envelope that names `name` (or one of several): as
    error.param (or a segment of its path), or as a whole word of the message (so `n` is not found inside
    "not")."""
    if (status is not None and ex.status != status) or not 400 <= ex.status < 500:
        fail(f"{what} got HTTP {ex.status}, not {status or 'a 4xx'}", ex.evidence())
    problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=strict)
    if problems:
        fail(f"{what}: " + "; ".join(problems), ex.evidence(*problems))
    names = (name,) if isinstance(name, str) else name
    if not error_names(ex.body, names):
        param, message = error_field(ex.body, "param"), str(error_field(ex.body, "message"))
        fail(f"{what}: the error names {' or '.join(map(repr, names))} neither as param ({param!r}) nor in its "
             f"message: {message!r}", ex.evidence())


def client_error_problems(ex: Exchange, what: str, *, strict: bool = False) -> list[str]:
    """What keeps `ex` from being a client error: not a 4xx, or a 4xx outside the error envelope."""
    if not 400 <= ex.status < 500:
        return [f"{what} got {ex.describe()}, not a 400"]
    return [f"{what}: {p}" for p in envelope_problems(ex.status, ex.content_type, ex.body, strict=strict)]


def error_names(body: bytes, names: tuple[str, ...]) -> bool:
    """Whether an error body (OpenAI's or Anthropic's envelope) names one of `names`: as a whole word of
    error.message (so `n` is not found inside "not") or a segment of error.param (`messages[0].x` names x)."""
    param, message = error_field(body, "param"), str(error_field(body, "message"))
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text, re.IGNORECASE)
               for n in names for text in (message, param if isinstance(param, str) else ""))


def honest_refusal(ex: Exchange, names: tuple[str, ...], envelope_problems=envelope_problems) -> bool:
    """A 400 in the right error envelope that names the feature: how api.openai.com and api.anthropic.com refuse
    an optional feature the model lacks ("This model does not support specifying dimensions."). It is a clear
    answer, not a defect; `envelope_problems(status, content_type, body)` says what the right envelope is."""
    return (ex.status == 400 and not envelope_problems(ex.status, ex.content_type, ex.body)
            and error_names(ex.body, names))


def skip_if_refused(ex: Exchange, names: tuple[str, ...], what: str, envelope_problems=envelope_problems) -> None:
    if honest_refusal(ex, names, envelope_problems):
        pytest.skip(f"not-claimed: the target refuses {what} for this model with a 400 that says so: "
                    f"{str(error_field(ex.body, 'message'))[:200]!r}")

