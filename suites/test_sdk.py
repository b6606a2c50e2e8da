"""The official openai SDK path: what users' code actually calls, with its typed models and error classes.

Many breakages bite only one client path (a raw parser tolerates what pydantic rejects, and the SDK's stream
helper concatenates what a raw reader ignores), so these checks repeat the essentials through the SDK. Every
SDK call runs under the run's deadline: the SDK's own timeout bounds each read, not a dripping or endless body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pydantic
import pytest

from .judge import max_abs_diff, retry_after_problems
from .registry import CheckFailed, Evidence, check, fail
from .wire import http_module, sdk_http_client, was_cut_off

openai = pytest.importorskip("openai")
HTTP = http_module(openai.DefaultHttpxClient)  # httpx, or the fork the SDK runs on

T = TypeVar("T")
HELLO = [{"role": "user", "content": "Count from one to ten."}]
RETRYABLE = (429, 503)


class Observed:
    """Status and headers of every response the SDK clients of this module received (sdk.retries reads them)."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, int, dict[str, str]]] = []

    def hook(self, response: Any) -> None:
        self.responses.append((str(response.request.url), response.status_code,
                               {k.lower(): v for k, v in response.headers.items()}))


@pytest.fixture(scope="module")
def observed() -> Observed:
    return Observed()


def make_client(target, observed: Observed, *, strict: bool, api_key: str | None = None, max_retries: int = 0):
    http_client = sdk_http_client(openai, target, observed.hook)
    return openai.OpenAI(base_url=target.base_url, api_key=api_key or target.api_key or "wirecheck-no-key",
                         max_retries=max_retries, timeout=target.deadline, http_client=http_client,
                         _strict_response_validation=strict)


@pytest.fixture(scope="module")
def client(target, observed) -> Iterator[Any]:
    """Strict response validation: the SDK's own pydantic models must accept every response."""
    c = make_client(target, observed, strict=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def loose(target, observed) -> Iterator[Any]:
    """The SDK as users construct it (its base64 embeddings path and streamed completions need it)."""
    c = make_client(target, observed, strict=False)
    yield c
    c.close()


def evidence(what: str, *notes: str) -> Evidence:
    return Evidence(request={"client": f"openai-python {openai.__version__}", "call": what}, notes=list(notes))


def bounded(target, what: str, fn: Callable[[list[Any]], T]) -> T:
    """Run `fn` (an SDK call, streams consumed inside) under the deadline; SDK errors become check failures.

    `fn` gets a list to register open streams on, so a stream still running at the deadline is closed.
    """
    if target.unresponsive:
        fail(f"{what}: {target.not_sent()}", evidence(what))
    box: dict[str, Any] = {}
    opened: list[Any] = []

    def run() -> None:
        try:
            box["value"] = fn(opened)
        except BaseException as exc:  # noqa: BLE001 - re-raised or reported below
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"wirecheck-sdk {what}", daemon=True)
    start = time.monotonic()
    worker.start()
    worker.join(target.deadline + 2)
    error = box.get("error")
    # A call that failed once the deadline had passed ran out of time too (the SDK's read timeout), as did one
    # whose body the deadline hooks cut off (dripping or endless): they count toward the stalls like a hang.
    late = error is not None and time.monotonic() - start >= target.deadline
    target.record(worker.is_alive() or late or was_cut_off(error))
    if worker.is_alive():
        for stream in opened:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - best effort, the thread is abandoned either way
                pass
        fail(f"{what}: the SDK call did not finish within the {target.deadline:.0f}s deadline", evidence(what))
    if isinstance(error, openai.APIStatusError):
        fail(f"{what}: the SDK raised {type(error).__name__} (HTTP {error.status_code}): {error.message}",
             evidence(what, str(error.body)[:2000]))
    if isinstance(error, openai.APIResponseValidationError):
        cause = str(error.__cause__ or error)
        fail(f"{what}: the SDK's models rejected the response: {cause[:600]}", evidence(what, cause))
    if isinstance(error, openai.APIError):
        fail(f"{what}: the SDK raised {raised(error)}", evidence(what))
    if isinstance(error, HTTP.HTTPError):  # raised while iterating a stream, where the SDK does not wrap it
        fail(f"{what}: reading the response failed: {raised(error)}", evidence(what))
    if error is not None and type(error).__name__ == "ValidationError":
        fail(f"{what}: the SDK's models rejected the response: {str(error)[:600]}", evidence(what, str(error)))
    if error is not None:
        raise error
    return box["value"]


def raised(error: BaseException) -> str:
    """An SDK exception in words. APITimeoutError and APIConnectionError say only "Request timed out." and
    "Connection error.": the httpx error under them says what was observed (no answer, a body cut off at the
    deadline or at the size cap)."""
    cause = error.__cause__
    return f"{type(error).__name__}: {error}" + (f" ({type(cause).__name__}: {cause})" if cause else "")


# ------------------------------------------------------------------------------------------------ chat


@pytest.fixture(scope="module")
def created(client, target) -> Any:
    """A greedy ChatCompletion, or the CheckFailed that getting one raised (sdk.chat.create reports it)."""
    try:
        return bounded(target, "chat.completions.create", lambda _: client.chat.completions.create(
            model=target.model, messages=HELLO, temperature=0, max_tokens=24))
    except CheckFailed as exc:
        return exc


@check("sdk.chat.create", surface="chat", paths=("sdk",),
       rationale="client.chat.completions.create() with strict response validation must parse the response into "
                 "ChatCompletion: role assistant, string content, a finish_reason the SDK knows.",
       faults=("chat-response-schema",))
def test_sdk_chat_create(created) -> None:
    if isinstance(created, CheckFailed):
        raise created
    choice = created.choices[0] if created.choices else None
    if choice is None:
        fail("ChatCompletion.choices is empty", evidence("chat.completions.create"))
    if choice.message.role != "assistant" or not isinstance(choice.message.content, (str, type(None))):
        fail(f"message is role {choice.message.role!r}, content {choice.message.content!r}",
             evidence("chat.completions.create"))


@check("sdk.chat.stream", surface="chat", paths=("sdk",), claims=("stream",),
       rationale="Iterating create(stream=True) must yield ChatCompletionChunks whose delta.role is set once "
                 "('assistant') and whose delta.content concatenates to the answer (the same as non-streamed "
                 "where determinism is claimed).",
       faults=("no-role-chunk", "role-every-chunk"))
def test_sdk_chat_stream(client, created, target) -> None:
    def consume(opened: list[Any]) -> tuple[list[Any], str, list[Any]]:
        stream = client.chat.completions.create(model=target.model, messages=HELLO, temperature=0, max_tokens=24,
                                                stream=True)
        opened.append(stream)
        roles, text, finishes = [], "", []
        for chunk in stream:
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                if choice.delta.role is not None:
                    roles.append(choice.delta.role)
                text += choice.delta.content or ""
                if choice.finish_reason is not None:
                    finishes.append(choice.finish_reason)
        return roles, text, finishes

    roles, text, finishes = bounded(target, "chat.completions.create(stream=True)", consume)
    what = "chat.completions.create(stream=True)"
    if roles != ["assistant"]:
        fail(f"delta.role over the stream was {roles}, not once 'assistant'", evidence(what))
    if len(finishes) != 1:
        fail(f"choice 0 got finish_reason {finishes}, not exactly one", evidence(what))
    if isinstance(created, CheckFailed) or not created.choices:
        return  # sdk.chat.create reports it; nothing to compare with
    if "determinism" in target.profile.claims and text != (created.choices[0].message.content or ""):
        fail(f"streamed text {text[:80]!r} differs from non-streamed {created.choices[0].message.content!r}",
             evidence(what))


@check("sdk.chat.stream-helper", surface="chat", paths=("sdk",), claims=("stream",),
       rationale="client.chat.completions.stream() accumulates chunks itself: a role repeated in every chunk "
                 "becomes 'assistantassistant...' and a missing role fails get_final_completion(); its final "
                 "message must be role assistant with content equal to the content.delta events.",
       faults=("role-every-chunk",))
def test_sdk_chat_stream_helper(client, target) -> None:
    what = "chat.completions.stream() + get_final_completion()"

    def consume(opened: list[Any]) -> tuple[list[str], Any]:
        deltas: list[str] = []
        with client.chat.completions.stream(model=target.model, messages=HELLO, temperature=0,
                                            max_tokens=24) as stream:
            opened.append(stream)
            for event in stream:
                if event.type == "content.delta":
                    deltas.append(event.delta)
            try:
                return deltas, stream.get_final_completion()
            except openai.LengthFinishReasonError as exc:  # the helper's own rule when max_tokens is hit
                return deltas, exc.completion

    deltas, final = bounded(target, what, consume)
    if not final.choices:
        fail("the final completion has no choices", evidence(what))
    message = final.choices[0].message
    if message.role != "assistant":
        fail(f"the final message's role is {message.role!r}, not 'assistant'", evidence(what))
    if (message.content or "") != "".join(deltas):
        fail(f"final content {message.content!r} is not the concatenated deltas {''.join(deltas)!r}", evidence(what))
    if final.choices[0].finish_reason not in ("stop", "length", "tool_calls", "content_filter", "function_call"):
        fail(f"final finish_reason is {final.choices[0].finish_reason!r}", evidence(what))


@check("sdk.chat.with-raw-response", surface="chat", paths=("sdk",),
       rationale="with_raw_response (how LangChain reads rate-limit headers) must expose status and headers and "
                 "still parse() into a ChatCompletion.")
def test_sdk_chat_with_raw_response(client, target) -> None:
    what = "chat.completions.with_raw_response.create"
    raw = bounded(target, what, lambda _: client.chat.completions.with_raw_response.create(
        model=target.model, messages=HELLO, max_tokens=4))
    if raw.status_code != 200:
        fail(f"raw response status {raw.status_code}", evidence(what))
    if "json" not in raw.headers.get("content-type", ""):
        fail(f"raw response content type {raw.headers.get('content-type')!r}", evidence(what))
    parsed = bounded(target, what + ".parse()", lambda _: raw.parse())
    if parsed.object != "chat.completion" or not parsed.choices:
        fail(f"parse() gave object {parsed.object!r} with {len(parsed.choices)} choices", evidence(what))


# ------------------------------------------------------------------------------- structured outputs, tools


class CityInfo(pydantic.BaseModel):
    city: str
    country: str


class GetWeather(pydantic.BaseModel):
    """Get the current weather in a city."""

    city: str


def _finished(target, what: str, fn: Callable[[list[Any]], T]) -> T:
    """`bounded`, with the two answers that decide nothing turned into skips: output cut off at max_tokens
    (inconclusive) and a 400 refusing the feature (not-claimed, as the raw checks report it); the SDK's
    validation errors become one-line failures (a report keeps a message's last line only)."""
    def call(opened: list[Any]) -> Any:
        try:
            return fn(opened)
        except (openai.LengthFinishReasonError, openai.BadRequestError, pydantic.ValidationError) as exc:
            return exc
        except openai.APIResponseValidationError as exc:
            if isinstance(exc.__cause__, pydantic.ValidationError):
                return exc.__cause__
            raise

    done = bounded(target, what, call)
    if isinstance(done, pydantic.ValidationError):
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']} (input {str(e.get('input'))[:80]!r})"
                           for e in done.errors()[:3])
        fail(f"{what}: the SDK could not parse the answer into its models: {errors}", evidence(what, str(done)))
    if isinstance(done, openai.LengthFinishReasonError):
        pytest.skip(f"inconclusive: {what}: the output was cut off at max_tokens, so it cannot be parsed")
    if isinstance(done, openai.BadRequestError):
        pytest.skip(f"not-claimed: {what}: the target rejects the request with HTTP 400: {done.message}")
    return done


@check("sdk.chat.parse", surface="chat", paths=("sdk",), claims=("json_schema",),
       rationale="client.chat.completions.parse(response_format=PydanticModel) sends a strict json_schema and "
                 "validates the content into the model: message.parsed must be an instance, not a "
                 "ValidationError on prose (A10: response_format accepted and ignored).",
       faults=("response-format-ignored",))
def test_sdk_chat_parse(client, target) -> None:
    what = "chat.completions.parse(response_format=CityInfo)"
    done = _finished(target, what, lambda _: client.chat.completions.parse(
        model=target.model, messages=[{"role": "user", "content": "Give the city Paris and its country as JSON."}],
        response_format=CityInfo, temperature=0, max_tokens=96))
    parsed = done.choices[0].message.parsed if done.choices else None
    if not isinstance(parsed, CityInfo):
        fail(f"message.parsed is {parsed!r}, not a CityInfo (content {done.choices[0].message.content!r})"
             if done.choices else "the parsed completion has no choices", evidence(what))


@check("sdk.chat.stream-tools", surface="chat", paths=("sdk",), claims=("tools", "stream"),
       rationale="client.chat.completions.stream(tools=[openai.pydantic_function_tool(Model)]) accumulates the "
                 "streamed call and parses its arguments into the model: repeated names or ids break the "
                 "accumulation, calls leaked as text never arrive (sglang #4700, vllm-mlx #43).",
       faults=("tool-calls-in-content", "tool-header-every-fragment"))
def test_sdk_chat_stream_tools(client, target) -> None:
    what = "chat.completions.stream(tools=[pydantic_function_tool(GetWeather)]) + get_final_completion()"

    def consume(opened: list[Any]) -> tuple[list[Any], Any]:
        with client.chat.completions.stream(
                model=target.model, messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")], tool_choice="required",
                temperature=0, max_tokens=64) as stream:
            opened.append(stream)
            done = [e.parsed_arguments for e in stream if e.type == "tool_calls.function.arguments.done"]
            return done, stream.get_final_completion()

    done, final = _finished(target, what, consume)
    calls = (final.choices[0].message.tool_calls or []) if final.choices else []
    if not calls:
        fail(f"the final completion has no tool_calls (content {final.choices[0].message.content!r})"
             if final.choices else "the final completion has no choices", evidence(what))
    call = calls[0]
    if call.function.name != "get_weather" or not isinstance(call.function.parsed_arguments, GetWeather):
        fail(f"tool_calls[0] is {call.function.name!r} with parsed_arguments {call.function.parsed_arguments!r} "
             f"(arguments {call.function.arguments!r}), not a get_weather call parsed into GetWeather",
             evidence(what))
    if not done or not all(isinstance(p, GetWeather) for p in done):
        fail(f"the tool_calls.function.arguments.done events carried {done!r}, not GetWeather instances",
             evidence(what))


# ----------------------------------------------------------------------------------- completions, embeddings


@check("sdk.completions.create", surface="completions", paths=("sdk",),
       rationale="client.completions.create() must parse into Completion (strict), and a streamed completion "
                 "must iterate to the same text through the SDK as users construct it.")
def test_sdk_completions_create(client, loose, target) -> None:
    what = "completions.create"
    done = bounded(target, what, lambda _: client.completions.create(
        model=target.model, prompt="Once upon a time", max_tokens=12, temperature=0))
    if done.object != "text_completion" or not done.choices:
        fail(f"Completion.object {done.object!r} with {len(done.choices)} choices", evidence(what))
    if "stream" not in target.profile.claims:
        return

    def consume(opened: list[Any]) -> str:
        stream = loose.completions.create(model=target.model, prompt="Once upon a time", max_tokens=12,
                                          temperature=0, stream=True)
        opened.append(stream)
        return "".join(c.choices[0].text for c in stream if c.choices)

    text = bounded(target, what + "(stream=True)", consume)
    if "determinism" in target.profile.claims and text != done.choices[0].text:
        fail(f"streamed text {text[:80]!r} differs from non-streamed {done.choices[0].text[:80]!r}",
             evidence(what + "(stream=True)"))


@check("sdk.embeddings.default-base64", surface="embeddings", paths=("sdk",), claims=("embeddings-base64",),
       rationale="Without encoding_format the SDK asks for base64 and decodes float32 itself; the vectors must "
                 "equal encoding_format='float' ones, or every default SDK user gets wrong embeddings.",
       faults=("embeddings-base64-float64",))
def test_sdk_embeddings_default_base64(loose, target) -> None:
    inputs = ["hello world", "héllo 🌍"]
    what = "embeddings.create (default encoding)"
    default = bounded(target, what, lambda _: loose.embeddings.create(model=target.embedding_model, input=inputs))
    floats = bounded(target, "embeddings.create(encoding_format='float')", lambda _: loose.embeddings.create(
        model=target.embedding_model, input=inputs, encoding_format="float"))
    if len(default.data) != len(inputs) or len(floats.data) != len(inputs):
        fail(f"{len(inputs)} inputs gave {len(default.data)} (default) / {len(floats.data)} (float) embeddings",
             evidence(what))
    for i, (a, b) in enumerate(zip(default.data, floats.data)):
        if not isinstance(a.embedding, list):
            fail(f"data[{i}].embedding decoded to {type(a.embedding).__name__}, not a list", evidence(what))
        if len(a.embedding) != len(b.embedding):
            fail(f"data[{i}]: the SDK's default (base64) path decoded {len(a.embedding)} values, the float "
                 f"response has {len(b.embedding)} (float64 bytes decode to twice as many)", evidence(what))
        diff = max_abs_diff(a.embedding, b.embedding)
        if diff > 1e-5:
            # Hosted embeddings are not bit-deterministic: allow what two float calls differ by.
            again = bounded(target, "embeddings.create(encoding_format='float') again",
                            lambda _: loose.embeddings.create(model=target.embedding_model, input=inputs,
                                                              encoding_format="float"))
            noise = max_abs_diff(b.embedding, again.data[i].embedding) if len(again.data) > i else 0.0
            diff = diff if diff > 4 * noise else 0.0
        if diff > 1e-5:
            fail(f"data[{i}]: the SDK's default (base64) vector differs from the float one by up to {diff:.3g}",
                 evidence(what))


# ---------------------------------------------------------------------------------------- models, errors


@check("sdk.models.list-retrieve", surface="models", paths=("sdk",), claims=("models-retrieve",),
       rationale="client.models.list() must parse (strict) and client.models.retrieve(id) must return the same "
                 "id for listed ids, including ids with '/' that the SDK percent-encodes.",
       faults=("models-missing-owned-by", "model-retrieve-mismatch"))
def test_sdk_models_list_retrieve(client, target) -> None:
    listed = bounded(target, "models.list", lambda _: list(client.models.list()))
    if not listed:
        fail("models.list() returned no models", evidence("models.list"))
    for model in listed[:20]:
        got = bounded(target, f"models.retrieve({model.id!r})", lambda _: client.models.retrieve(model.id))
        if got.id != model.id or got.object != "model":
            fail(f"models.retrieve({model.id!r}) returned id {got.id!r}, object {got.object!r}",
                 evidence(f"models.retrieve({model.id!r})"))


def raises(target, what: str, call: Callable[[], Any], expected: type, evidence=evidence) -> Any:
    """The exception `call()` raises, failing unless it is an `expected` (an SDK's error class)."""
    def attempt(_: list[Any]) -> Any:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - the SDK's errors, or e.g. pydantic rejecting an error sent as 200
            return exc
        return None

    exc = bounded(target, what, attempt)
    if not isinstance(exc, expected):
        got = "no exception" if exc is None else f"{type(exc).__name__}: {str(exc)[:300]}"
        sdk = expected.__module__.split(".")[0]
        fail(f"{what} should raise {sdk}.{expected.__name__}; got {got}", evidence(what))
    return exc


def raise_each(target, cases: list[tuple[str, Callable[[], Any], type]], evidence=evidence) -> tuple[list[Any], list[str]]:
    """`raises` for every case, each tried whatever the others did: (the exceptions, None where the class was
    wrong; what was wrong, one sentence per case)."""
    found, problems = [], []
    for what, call, expected in cases:
        try:
            found.append(raises(target, what, call, expected, evidence))
        except CheckFailed as exc:
            found.append(None)
            problems.append(str(exc))
    return found, problems


@check("sdk.errors.classes", surface="errors", paths=("sdk",),
       rationale="Clients branch on the SDK's exception classes: 400 -> BadRequestError (with .message, and "
                 ".param), unknown model -> NotFoundError, bad key -> AuthenticationError; a 200, 422 or 500 "
                 "instead lands in the wrong handler (or is retried).",
       faults=("error-as-200", "fastapi-422"))
def test_sdk_errors_classes(client, target, observed) -> None:
    if "chat" not in target.profile.surfaces:
        pytest.skip("not-claimed: the profile does not claim chat")
    # A vendor documenting 422 for semantically invalid parameters (Hoonify) gets the SDK's class for 422.
    expected = openai.UnprocessableEntityError if target.profile.semantic_status == 422 else openai.BadRequestError
    name = expected.__name__
    cases = [("chat.completions.create(temperature=3)", lambda: client.chat.completions.create(
                 model=target.model, messages=HELLO, temperature=3, max_tokens=2), expected),
             ("chat.completions.create(model=<unknown>)", lambda: client.chat.completions.create(
                 model="wirecheck-no-such-model-7f3a", messages=HELLO, max_tokens=2), openai.NotFoundError)]
    wrong = make_client(target, observed, strict=True, api_key="wirecheck-wrong-key") if target.api_key else None
    if wrong is not None:
        cases.append(("chat.completions.create with a wrong key", lambda: wrong.chat.completions.create(
            model=target.model, messages=HELLO, max_tokens=2), openai.AuthenticationError))
    try:
        (exc, *_), problems = raise_each(target, cases)
    finally:
        if wrong is not None:
            wrong.close()
    if exc is not None and not exc.message:
        problems.append(f"{name} carries no message")
    if exc is not None and target.strict and exc.param != "temperature":
        problems.append(f"{name}.param is {exc.param!r}, not 'temperature'")
    if problems:
        fail("; ".join(problems), evidence("temperature=3, an unknown model, a wrong key"))


@check("sdk.retries", surface="http", paths=("sdk",),
       rationale="The openai SDK retries 429/503 honouring Retry-After (or retry-after-ms) up to 120 s; without a "
                 "parseable header it backs off blindly, and above 120 s it gives up at once.")
def test_sdk_retries(loose, target, observed) -> None:
    # One more request of our own, so the check has something to judge even when run alone. Never a burst.
    bounded(target, "models.list", lambda _: _swallow(lambda: loose.models.list()))
    limited = [(url, status, headers) for url, status, headers in observed.responses if status in RETRYABLE]
    if not limited:
        pytest.skip(f"inconclusive: the target answered none of this run's {len(observed.responses)} SDK requests "
                    f"with 429 or 503 (it is not hammered to provoke one)")
    for url, status, headers in limited:
        problems = retry_after_problems(status, headers)
        if problems:
            fail(f"{url}: " + "; ".join(problems), Evidence(request={"url": url}, status=status, headers=headers,
                                                             notes=problems))


def _swallow(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except openai.APIError as exc:
        return exc
