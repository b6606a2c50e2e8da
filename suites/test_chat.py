"""Chat completions, request and response (non-stream shape, sampling controls, replayed histories).

Model-agnostic: the target's model is unknown, so every check asserts properties of its own output (a stop
string taken from its greedy answer, token bounds, identical reruns), never golden text. Stream framing is
judged by the stream invariants (test_chat_stream.py); here streams only serve to compare text.
"""

from __future__ import annotations

from typing import Any

import pytest

from .expect import (expect_client_error_naming, expect_no_problems, expect_object, expect_stream, first_choice,
                     message_content)
from .judge import (assemble, chat_logprob_problems, pick_stop, schema_problems, stop_verdict, template_token_leaks,
                    usage_problems)
from .registry import check, fail
from .wire import Exchange

PROMPT = [{"role": "user", "content": "Count from one to ten."}]
DETERMINISM_PROMPT = [{"role": "user", "content": "What is 7 times 8?"}]
MAX_TOKENS = 48  # enough for a few sentences; small enough to stay fast on any target
BOUND = 3  # the token bound the max-tokens checks ask for


def chat(wire, target, messages: list[dict[str, Any]] | None = None, **fields: Any) -> Exchange:
    return wire.post("chat/completions", {"model": target.model, "messages": messages or PROMPT, **fields})


@pytest.fixture(scope="module")
def greedy(wire, target) -> tuple[Exchange, dict[str, Any]]:
    """One greedy answer: the reference output the stop and token-bound checks derive their requests from."""
    ex = chat(wire, target, temperature=0, max_tokens=MAX_TOKENS)
    return ex, expect_object(ex, "a plain greedy chat completion")


def greedy_text(greedy: tuple[Exchange, dict[str, Any]]) -> str:
    ex, body = greedy
    return message_content(first_choice(body, ex), ex) or ""


# ------------------------------------------------------------------------------------------------ shape


@check("chat.response-schema", surface="chat",
       rationale="Non-stream chat responses must match CreateChatCompletionResponse (integer created, object "
                 "chat.completion, message.role assistant, string content): the SDKs' typed models reject "
                 "anything else (breakage 30).",
       faults=("chat-response-schema",))
def test_chat_response_schema(greedy, target) -> None:
    ex, body = greedy
    problems = schema_problems("CreateChatCompletionResponse", body, strict=target.strict)
    expect_no_problems(ex, problems)


@check("chat.response.content-type", surface="chat",
       rationale="A request without `stream` (or with `stream: false`) must get one application/json object, "
                 "no SSE framing: clients parse it with json.loads (breakage 8).")
def test_chat_response_content_type(greedy, wire, target) -> None:
    explicit = chat(wire, target, stream=False, max_tokens=BOUND)
    for ex, what in ((greedy[0], "no `stream` field"), (explicit, "`stream: false`")):
        expect_object(ex, f"a request with {what}")
        if not ex.content_type.lower().startswith("application/json"):
            fail(f"a request with {what} got content type {ex.content_type!r}, not application/json",
                 ex.evidence())
        if ex.body.lstrip().startswith(b"data:"):
            fail(f"a request with {what} got SSE framing", ex.evidence())


@check("chat.usage.arithmetic", surface="chat",
       rationale="usage holds integer token counts with total_tokens = prompt_tokens + completion_tokens; "
                 "billing and token budgeting in clients add them up (breakage 30).",
       faults=("usage-arithmetic",))
def test_chat_usage_arithmetic(greedy, target) -> None:
    ex, body = greedy
    if "usage" not in body or body["usage"] is None:
        if target.strict:
            fail("the response carries no usage", ex.evidence())
        pytest.skip("inconclusive: the response carries no usage (OpenAI always sends it; --strict fails this)")
    problems = usage_problems(body["usage"])
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))


@check("chat.content.no-template-tokens", surface="chat",
       rationale="Chat-template control tokens (<|im_end|>, </s>, <|eot_id|>) must never reach `content`: they "
                 "leak when a server detokenises with special tokens kept (breakage 16).")
def test_chat_no_template_tokens(greedy) -> None:
    ex, body = greedy
    leaks = template_token_leaks(greedy_text(greedy))
    if leaks:
        fail(f"content holds chat-template tokens {leaks}", ex.evidence())


# ---------------------------------------------------------------------------------------------- choices


@check("chat.n.choices", surface="chat", claims=("n",),
       rationale="`n: 2` must return two choices indexed 0 and 1; a server that ignores n silently returns one "
                 "and clients index choices[1] (breakage 17).",
       faults=("n-ignored",))
def test_chat_n_choices(wire, target) -> None:
    ex = chat(wire, target, n=2, max_tokens=8)
    body = expect_object(ex, "a request with n=2")
    choices = body.get("choices")
    if not isinstance(choices, list) or len(choices) != 2:
        fail(f"n=2 returned {len(choices) if isinstance(choices, list) else choices!r} choices", ex.evidence())
    indexes = sorted(c.get("index") for c in choices if isinstance(c, dict))
    if indexes != [0, 1]:
        fail(f"n=2 returned choice indexes {indexes}, not [0, 1]", ex.evidence())
    for choice in choices:
        message_content(choice, ex)


@check("chat.n.stream-indexes", surface="chat", claims=("n", "stream"),
       rationale="A streamed `n: 2` must distinguish choices by `index`, each with its own role chunk and its own "
                 "finish_reason; clients demultiplex on index (breakage 17).",
       faults=("n-ignored",))
def test_chat_n_stream_indexes(wire, target) -> None:
    ex = chat(wire, target, n=2, max_tokens=8, stream=True)
    choices = assemble(expect_stream(ex, "a streamed request with n=2"))
    if sorted(choices) != [0, 1]:
        fail(f"a streamed n=2 carried choice indexes {sorted(choices)}, not [0, 1]", ex.evidence())
    for index, acc in sorted(choices.items()):
        if acc.roles != ["assistant"]:
            fail(f"choice {index} set delta.role {acc.roles}, not once 'assistant'", ex.evidence())
        if len(acc.finish_reasons) != 1:
            fail(f"choice {index} got finish_reason {acc.finish_reasons}, not exactly one", ex.evidence())


# ------------------------------------------------------------------------------------------------- stops


def _stop_request(greedy, target) -> tuple[str, str]:
    picked = pick_stop(greedy_text(greedy))
    if picked is None:
        pytest.skip(f"inconclusive: the greedy output {greedy_text(greedy)!r} is too short to take a stop string "
                    f"from")
    return picked


def _judge_stop(ex: Exchange, stop: str, expected: str, content: str | None, finish: Any) -> None:
    verdict = stop_verdict(stop, expected, content, finish)
    if verdict.result == "fail":
        fail(verdict.message, ex.evidence(f"stop={stop!r}", f"expected output: {expected!r}"))
    if verdict.result == "inconclusive":
        pytest.skip("inconclusive: " + verdict.message)


@check("chat.stop.excluded", surface="chat", claims=("stop",),
       rationale="With `stop`, the output is the greedy text that preceded the stop string, ending with "
                 "finish_reason 'stop': never the stop string, nor its first characters (a server that cuts after "
                 "the token completing the match keeps them). Taken from the target's own greedy output, so it is "
                 "model-agnostic (breakage 16).",
       faults=("stop-leaked",))
def test_chat_stop_excluded(greedy, wire, target) -> None:
    stop, expected = _stop_request(greedy, target)
    ex = chat(wire, target, temperature=0, max_tokens=MAX_TOKENS, stop=[stop])
    choice = first_choice(expect_object(ex, "a greedy request with a stop string"), ex)
    _judge_stop(ex, stop, expected, message_content(choice, ex), choice.get("finish_reason"))


@check("chat.stop.excluded-streamed", surface="chat", claims=("stop", "stream"),
       rationale="Streamed, the stop string must not leak either, even when it spans chunk boundaries (servers "
                 "that match per chunk send its first half); finish_reason 'stop' (breakage 16).",
       faults=("stop-leaked",))
def test_chat_stop_excluded_streamed(greedy, wire, target) -> None:
    stop, expected = _stop_request(greedy, target)
    ex = chat(wire, target, temperature=0, max_tokens=MAX_TOKENS, stop=[stop], stream=True)
    choice = assemble(expect_stream(ex, "a streamed greedy request with a stop string")).get(0)
    if choice is None:
        fail("the stream carried no choice 0", ex.evidence())
    _judge_stop(ex, stop, expected, choice.content, choice.finish_reason)


# ------------------------------------------------------------------------------------------ token bounds


def _judge_bound(ex: Exchange, field: str, greedy) -> None:
    body = expect_object(ex, f"a request with {field}={BOUND}")
    choice = first_choice(body, ex)
    content = message_content(choice, ex) or ""
    usage = body.get("usage")
    used = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if isinstance(used, int) and used > BOUND:
        fail(f"{field}={BOUND} produced {used} completion tokens", ex.evidence())
    if used is None and len(content) >= len(greedy_text(greedy)):
        fail(f"{field}={BOUND} did not shorten the output ({content[:80]!r})", ex.evidence())
    if choice.get("finish_reason") != "length":
        fail(f"output cut at {field}={BOUND} has finish_reason {choice.get('finish_reason')!r}, not 'length'",
             ex.evidence())


def _needs_longer_output(greedy) -> None:
    ex, body = greedy
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    used = usage.get("completion_tokens")
    if (isinstance(used, int) and used <= BOUND) or (used is None and len(greedy_text(greedy)) < 4 * BOUND):
        pytest.skip(f"inconclusive: the greedy output is too short ({used} tokens) to test a {BOUND}-token bound")


@check("chat.max-tokens", surface="chat",
       rationale="`max_tokens: N` bounds the output (usage.completion_tokens <= N, finish_reason 'length' when "
                 "hit); clients rely on it for cost and latency (breakage 15).",
       faults=("max-tokens-ignored",))
def test_chat_max_tokens(greedy, wire, target) -> None:
    _needs_longer_output(greedy)
    _judge_bound(chat(wire, target, temperature=0, max_tokens=BOUND), "max_tokens", greedy)


@check("chat.max-completion-tokens", surface="chat", claims=("max_completion_tokens",),
       rationale="`max_completion_tokens` (what the openai SDK and o-series clients send) must bound the output "
                 "exactly like max_tokens; servers that only read max_tokens run to the context limit "
                 "(breakage 15).",
       faults=("max-tokens-ignored", "max-completion-tokens-ignored"))
def test_chat_max_completion_tokens(greedy, wire, target) -> None:
    _needs_longer_output(greedy)
    _judge_bound(chat(wire, target, temperature=0, max_completion_tokens=BOUND), "max_completion_tokens", greedy)


# ---------------------------------------------------------------------------------------- logprobs, seeds


@check("chat.logprobs.shape", surface="chat", claims=("logprobs",),
       rationale="logprobs=true, top_logprobs=2 must give logprobs.content[] with token, logprob <= 0, UTF-8 "
                 "bytes and up to 2 sorted top_logprobs; dropped or reshaped logprobs break eval harnesses.",
       faults=("logprobs-dropped",))
def test_chat_logprobs_shape(wire, target) -> None:
    ex = chat(wire, target, temperature=0, max_tokens=12, logprobs=True, top_logprobs=2)
    choice = first_choice(expect_object(ex, "a request with logprobs"), ex)
    problems = chat_logprob_problems(choice.get("logprobs"), 2, message_content(choice, ex), strict=target.strict)
    expect_no_problems(ex, problems)


@check("chat.seed.accepted", surface="chat", claims=("seed",),
       rationale="`seed` is a documented request field; a server that rejects it breaks every client that pins "
                 "seeds for reproducible evals.")
def test_chat_seed_accepted(wire, target) -> None:
    expect_object(chat(wire, target, seed=1234, max_tokens=BOUND), "a request with seed")


@check("chat.determinism", surface="chat", claims=("determinism", "stream"),
       rationale="A target claiming determinism must give identical text for temperature 0 + fixed seed, twice "
                 "and streamed vs non-streamed; caches and regression tests depend on it.")
def test_chat_determinism(wire, target) -> None:
    fields = {"temperature": 0, "seed": 7, "max_tokens": 32}
    # Two prompts, three answers each: a server that samples anyway must repeat itself five times over to
    # pass, which even a tiny model with peaked distributions practically never does.
    for messages in (PROMPT, DETERMINISM_PROMPT):
        texts = []
        for attempt in range(2):
            ex = chat(wire, target, messages, **fields)
            texts.append(message_content(first_choice(expect_object(ex, "a seeded greedy request"), ex), ex) or "")
        if texts[0] != texts[1]:
            fail(f"two identical seeded greedy requests differ: {texts[0][:80]!r} vs {texts[1][:80]!r}", ex.evidence())
        streamed = chat(wire, target, messages, stream=True, **fields)
        choice = assemble(expect_stream(streamed, "the same request streamed")).get(0)
        text = choice.content if choice else ""
        if text != texts[0]:
            fail(f"streamed text {text[:80]!r} differs from non-streamed {texts[0][:80]!r}", streamed.evidence())


# ---------------------------------------------------------------------------------------- request forms


# What api.openai.com answers an unknown top-level field with (its SDKs raise BadRequestError with this message).
UNRECOGNIZED = '{"error": {"message": "Unrecognized request argument supplied: <field>", "type": "invalid_request_error"}}'
UNKNOWN_FIELDS = ("wirecheck_unknown_field", "wirecheck_note")
REFUSALS_OF_ANOTHER_KIND = (401, 403, 404, 408, 429)  # auth, routing and rate limits are not about the fields


@check("chat.request.unknown-fields-ignored", surface="chat",
       rationale="Unknown fields, top-level and inside messages, are either ignored (200: vLLM, most gateways) or "
                 "refused the way api.openai.com refuses them: a 400 in the error envelope that names the field "
                 f"({UNRECOGNIZED}, langchain_dart #712), which the SDK raises as BadRequestError. A 422 "
                 "{\"detail\": ...} (FastAPI's default), a 500 or an envelope that never names the field leave "
                 "the client with no usable error (breakage 13).",
       faults=("unknown-field-rejected",))
def test_chat_unknown_fields_ignored(wire, target) -> None:
    messages = [{"role": "user", "content": "Say hi.", UNKNOWN_FIELDS[1]: "an unknown message field"}]
    ex = chat(wire, target, messages, max_tokens=BOUND, **{UNKNOWN_FIELDS[0]: {"nested": [1, 2]}})
    what = "a request with unknown fields (top-level and in a message)"
    if 400 <= ex.status < 500 and ex.status not in REFUSALS_OF_ANOTHER_KIND:
        expect_client_error_naming(ex, UNKNOWN_FIELDS, what, strict=target.strict)
        return
    expect_object(ex, what)


def _history(assistant: dict[str, Any]) -> list[dict[str, Any]]:
    call = {"id": "call_wirecheck_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    return [{"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "tool_calls": [call], **assistant},
            {"role": "tool", "tool_call_id": "call_wirecheck_1", "content": "{\"temperature_c\": 21}"},
            {"role": "user", "content": "Thanks. Summarise it in one sentence."}]


def _replay(wire, target, assistant: dict[str, Any], what: str) -> None:
    ex = chat(wire, target, _history(assistant), max_tokens=BOUND)
    expect_object(ex, f"a replayed history whose assistant tool-call message has {what}")


@check("chat.request.assistant-content-null", surface="chat",
       rationale="Replayed assistant messages with tool_calls carry `content: null` (that is what the API "
                 "returned); servers that demand a string 400 every agent's second turn (breakage 14).",
       faults=("null-content-rejected",))
def test_chat_assistant_content_null(wire, target) -> None:
    _replay(wire, target, {"content": None}, "content null")


@check("chat.request.assistant-content-empty", surface="chat",
       rationale="Some frameworks replay tool-call turns with `content: \"\"`; it must be accepted with the "
                 "following tool message (breakage 14).")
def test_chat_assistant_content_empty(wire, target) -> None:
    _replay(wire, target, {"content": ""}, "content \"\"")


@check("chat.request.assistant-content-absent", surface="chat",
       rationale="Other frameworks omit `content` on tool-call turns entirely; OpenAI accepts it and so must a "
                 "compatible server (breakage 14).")
def test_chat_assistant_content_absent(wire, target) -> None:
    _replay(wire, target, {}, "no content field")


@check("chat.request.content-parts", surface="chat",
       rationale="User content as an array of text parts ([{type: text, text}]) is the form multimodal-aware "
                 "clients always send; text-only servers must still accept text parts.")
def test_chat_content_parts(wire, target) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Say hi"}, {"type": "text", "text": "."}]}]
    expect_object(chat(wire, target, messages, max_tokens=BOUND), "a request with text content parts")


@check("chat.request.developer-role", surface="chat",
       rationale="The openai SDK and o-series-aware clients send instructions as role 'developer'; servers that "
                 "only know 'system' reject them with 400.")
def test_chat_developer_role(wire, target) -> None:
    messages = [{"role": "developer", "content": "Answer briefly."}, {"role": "user", "content": "Say hi."}]
    expect_object(chat(wire, target, messages, max_tokens=BOUND), "a request with a developer message")


# ---------------------------------------------------------------------------------------- vendor sampling extensions


@check("chat.min-tokens", surface="chat", claims=("min_tokens",), faults=("min-tokens-ignored",),
       rationale="`min_tokens` (CompactifAI's and vLLM's extension) forbids ending before N tokens: an answer "
                 "that stops early under it means the field was dropped on the way, and clients that size outputs "
                 "with it get short ones.")
def test_chat_min_tokens(wire, target) -> None:
    short = [{"role": "user", "content": "Say hi."}]  # a prompt models answer in a few tokens
    floor = 24
    natural = (expect_object(chat(wire, target, short, temperature=0, max_tokens=floor + 16),
                             "a short greedy answer").get("usage") or {}).get("completion_tokens")
    if isinstance(natural, int) and natural >= floor:
        pytest.skip(f"inconclusive: the greedy answer already has {natural} tokens, at or above {floor}")
    ex = chat(wire, target, short, temperature=0, max_tokens=floor + 16, min_tokens=floor)
    body = expect_object(ex, f"a request with min_tokens {floor}")
    used = (body.get("usage") or {}).get("completion_tokens")
    if not isinstance(used, int) or used < floor:
        fail(f"min_tokens {floor}: the answer has {used!r} completion tokens", ex.evidence())


@check("chat.top-k", surface="chat", claims=("top_k",), faults=("top-k-ignored",),
       rationale="`top_k: 1` keeps only the most likely token, so sampling at any temperature must give the "
                 "greedy answer; a sampled answer that differs means top_k never reached the sampler.")
def test_chat_top_k(greedy, wire, target) -> None:
    expected = greedy_text(greedy)
    if not expected:
        pytest.skip("inconclusive: the greedy answer is empty")
    for seed in (11, 12, 13):
        ex = chat(wire, target, temperature=1.5, top_k=1, seed=seed, max_tokens=MAX_TOKENS)
        got = message_content(first_choice(expect_object(ex, "a request with top_k 1"), ex), ex) or ""
        if got != expected:
            fail(f"top_k 1 at temperature 1.5 (seed {seed}) answered {got[:60]!r}, not the greedy "
                 f"{expected[:60]!r}", ex.evidence())
