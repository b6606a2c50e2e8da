"""The official anthropic SDK path (2.x): messages.create, messages.stream() with text_stream and
get_final_message, messages.count_tokens, and its error classes, with strict response validation.

Every call runs under the run's deadline (test_sdk.bounded); the SDK's own exceptions become check failures.
The SDK takes the API root without /v1 and sends its own anthropic-version (newer than 2023-06-01) and the key
as `Authorization: Bearer`: a server must accept what the SDK sends as well as what raw clients send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from .judge import schema_problems
from .registry import CheckFailed, Evidence, check, fail
from .test_sdk import bounded, raise_each, raised
from .wire import sdk_http_client

anthropic = pytest.importorskip("anthropic")

T = TypeVar("T")
HELLO = [{"role": "user", "content": "Count from one to ten."}]
GREEDY = {"temperature": 0}  # the 2.x SDK no longer types temperature: it goes in extra_body
UNKNOWN_MODEL = "wirecheck-no-such-model-7f3a"


def evidence(what: str, *notes: str) -> Evidence:
    return Evidence(request={"client": f"anthropic-python {anthropic.__version__}", "call": what}, notes=list(notes))


def make_client(target, *, api_key: str | None = None, base_url: str | None = None):
    """The SDK on the target; its base URL is the target's without /v1 (the SDK adds it), unless `base_url`."""
    root = target.base_url[: -len("/v1")] if target.base_url.endswith("/v1") else target.base_url
    return anthropic.Anthropic(base_url=base_url or root, api_key=api_key or target.api_key or "wirecheck-no-key", max_retries=0,
                               timeout=target.deadline, _strict_response_validation=True,
                               http_client=sdk_http_client(anthropic, target))


@pytest.fixture(scope="module")
def claude(target) -> Iterator[Any]:
    client = make_client(target)
    yield client
    client.close()


def run(target, what: str, fn: Callable[[list[Any]], T]) -> T:
    """`bounded`, with the anthropic SDK's errors (and whatever else its helpers raise) as check failures."""
    def call(opened: list[Any]) -> T:
        try:
            return fn(opened)
        except CheckFailed:
            raise
        except anthropic.APIStatusError as exc:
            raise CheckFailed(f"{what}: the SDK raised {type(exc).__name__} (HTTP {exc.status_code}): {exc.message}",
                              evidence(what, str(exc.body)[:2000])) from None
        except anthropic.APIResponseValidationError as exc:
            cause = str(exc.__cause__ or exc)
            raise CheckFailed(f"{what}: the SDK's models rejected the response: {cause[:600]}",
                              evidence(what, cause)) from None
        except Exception as exc:  # noqa: BLE001 - the SDK's helpers raise plain exceptions on broken streams
            raise CheckFailed(f"{what}: the SDK raised {raised(exc)[:600]}", evidence(what)) from None

    return bounded(target, what, call)


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@pytest.fixture(scope="module")
def created(claude, target) -> Any:
    """A greedy Message, or the CheckFailed that getting one raised (sdk.messages.create reports it)."""
    try:
        return run(target, "messages.create", lambda _: claude.messages.create(
            model=target.model, max_tokens=24, messages=HELLO, extra_body=GREEDY))
    except CheckFailed as exc:
        return exc


@check("sdk.messages.create", surface="messages", paths=("sdk",),
       rationale="client.messages.create() with strict response validation must parse the reply into Message: a "
                 "string id, role assistant, typed content blocks, a stop_reason the SDK knows, integer usage. The "
                 "SDK never parses the id, so its `msg_` form is judged under --strict only.",
       faults=("messages-response-schema",))
def test_sdk_messages_create(created, target) -> None:
    if isinstance(created, CheckFailed):
        raise created
    what = "messages.create"
    if created.type != "message" or created.role != "assistant" or not isinstance(created.id, str) or not created.id:
        fail(f"Message has type {created.type!r}, role {created.role!r}, id {created.id!r}", evidence(what))
    if target.strict:
        problems = [p for p in schema_problems("AnthropicMessage", created.model_dump(mode="json"), strict=True)
                    if p.startswith("id:")]
        if problems:
            fail("; ".join(problems), evidence(what))
    if created.stop_reason not in ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"):
        fail(f"Message.stop_reason is {created.stop_reason!r}", evidence(what))
    if not (isinstance(created.usage.input_tokens, int) and created.usage.input_tokens > 0
            and isinstance(created.usage.output_tokens, int)):
        fail(f"Message.usage is {created.usage!r}", evidence(what))


@check("sdk.messages.stream", surface="messages", paths=("sdk",), claims=("stream",),
       rationale="client.messages.stream() dispatches on event names and accumulates the message: text_stream must "
                 "yield the text and get_final_message() the Message whose text equals it (and the non-streamed "
                 "text where determinism is claimed); unnamed events are skipped and error events raised.",
       faults=("messages-unnamed-events", "messages-error-midstream"))
def test_sdk_messages_stream(claude, created, target) -> None:
    what = "messages.stream() + text_stream + get_final_message()"

    def consume(opened: list[Any]) -> tuple[str, Any]:
        with claude.messages.stream(model=target.model, max_tokens=24, messages=HELLO, extra_body=GREEDY) as stream:
            opened.append(stream)
            text = "".join(stream.text_stream)
            return text, stream.get_final_message()

    text, final = run(target, what, consume)
    if final.stop_reason is None:
        fail("the final message has no stop_reason (no message_delta reached the SDK)", evidence(what))
    if text_of(final) != text or not text:
        fail(f"text_stream gave {text[:80]!r}, the final message's text is {text_of(final)[:80]!r}", evidence(what))
    if isinstance(created, CheckFailed):
        return  # sdk.messages.create reports it; nothing to compare with
    if "determinism" in target.profile.claims and text != text_of(created):
        fail(f"streamed text {text[:80]!r} differs from non-streamed {text_of(created)[:80]!r}", evidence(what))


@check("sdk.messages.count-tokens", surface="messages", paths=("sdk",), claims=("count_tokens",),
       rationale="client.messages.count_tokens() must return MessageTokensCount whose input_tokens equals what "
                 "messages.create bills for the same prompt (Claude Code budgets its context with it).",
       faults=("messages-count-tokens-missing",))
def test_sdk_messages_count_tokens(claude, created, target) -> None:
    what = "messages.count_tokens"
    counted = run(target, what, lambda _: claude.messages.count_tokens(model=target.model, messages=HELLO))
    if not isinstance(counted.input_tokens, int) or counted.input_tokens <= 0:
        fail(f"count_tokens returned input_tokens {counted.input_tokens!r}", evidence(what))
    if not isinstance(created, CheckFailed) and counted.input_tokens != created.usage.input_tokens:
        fail(f"count_tokens says {counted.input_tokens}, messages.create billed {created.usage.input_tokens} input "
             f"tokens for the same prompt", evidence(what))


@check("sdk.messages.errors", surface="messages", paths=("sdk",),
       rationale="Clients branch on the anthropic SDK's exception classes: an invalid request (no messages) -> "
                 "BadRequestError, an unknown model -> NotFoundError, a wrong key -> AuthenticationError; a 200, "
                 "422 or 500 instead lands in the wrong handler (or is retried). Each is tried whatever the others "
                 "gave. (max_tokens 0 is valid: anthropic-python documents it for pre-warming the prompt cache.)",
       faults=("error-as-200",))
def test_sdk_messages_errors(claude, target) -> None:
    cases = [("messages.create(messages=[])", lambda: claude.messages.create(
                 model=target.model, max_tokens=4, messages=[]), anthropic.BadRequestError),
             ("messages.create(model=<unknown>)", lambda: claude.messages.create(
                 model=UNKNOWN_MODEL, max_tokens=4, messages=HELLO), anthropic.NotFoundError)]
    wrong = make_client(target, api_key="wirecheck-wrong-key") if target.api_key else None
    if wrong is not None:
        cases.append(("messages.create with a wrong key", lambda: wrong.messages.create(
            model=target.model, max_tokens=4, messages=HELLO), anthropic.AuthenticationError))
    try:
        _, problems = raise_each(target, cases, evidence)
    finally:
        if wrong is not None:
            wrong.close()
    if problems:
        fail("; ".join(problems), evidence("messages=[], an unknown model, a wrong key"))