"""Legacy text completions (/v1/completions), request and response; stream framing is judged elsewhere."""

from __future__ import annotations

from typing import Any

import pytest

from .expect import expect_no_problems, expect_object, expect_stream, first_choice
from .judge import assemble, completion_logprob_problems, pick_stop, schema_problems, stop_verdict, usage_problems
from .registry import check, fail
from .wire import Exchange

PROMPT = "Once upon a time"
MAX_TOKENS = 32


def complete(wire, target, prompt: Any = PROMPT, **fields: Any) -> Exchange:
    return wire.post("completions", {"model": target.model, "prompt": prompt, **fields})


@pytest.fixture(scope="module")
def greedy(wire, target) -> tuple[Exchange, dict[str, Any]]:
    ex = complete(wire, target, temperature=0, max_tokens=MAX_TOKENS)
    return ex, expect_object(ex, "a plain greedy completion")


def choice_text(choice: dict[str, Any], ex: Exchange) -> str:
    text = choice.get("text")
    if not isinstance(text, str):
        fail(f"choice.text is {text!r}, not a string", ex.evidence())
    return text


@check("completions.response-schema", surface="completions",
       rationale="Completions responses must match CreateCompletionResponse (object text_completion, integer "
                 "created, choices[].text, finish_reason); the SDKs' typed models reject anything else.")
def test_completions_response_schema(greedy, target) -> None:
    ex, body = greedy
    problems = schema_problems("CreateCompletionResponse", body, strict=target.strict)
    choices = body.get("choices")
    if isinstance(choices, list) and not choices:
        problems.append("choices is empty")
    for i, choice in enumerate(choices if isinstance(choices, list) else []):
        if isinstance(choice, dict) and choice.get("finish_reason") is None:
            problems.append(f"choices[{i}].finish_reason is null in a finished, non-streamed completion")
    expect_no_problems(ex, problems)


@check("completions.usage.arithmetic", surface="completions",
       rationale="usage holds integer token counts with total_tokens = prompt_tokens + completion_tokens; "
                 "clients account tokens from it.")
def test_completions_usage_arithmetic(greedy, target) -> None:
    ex, body = greedy
    if body.get("usage") is None:
        if target.strict:
            fail("the response carries no usage", ex.evidence())
        pytest.skip("inconclusive: the response carries no usage (OpenAI always sends it; --strict fails this)")
    problems = usage_problems(body["usage"])
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))


def _picked(greedy) -> tuple[str, str]:
    ex, body = greedy
    text = choice_text(first_choice(body, ex), ex)
    picked = pick_stop(text)
    if picked is None:
        pytest.skip(f"inconclusive: the greedy text {text!r} is too short to take a stop string from")
    return picked


@check("completions.stop.excluded", surface="completions", claims=("stop",),
       rationale="With `stop`, the text ends before the stop string with finish_reason 'stop'; the stop string "
                 "is taken from the target's own greedy output (model-agnostic); streamed too.")
def test_completions_stop_excluded(greedy, wire, target) -> None:
    stop, expected = _picked(greedy)
    ex = complete(wire, target, temperature=0, max_tokens=MAX_TOKENS, stop=[stop])
    choice = first_choice(expect_object(ex, "a greedy completion with a stop string"), ex)
    verdict = stop_verdict(stop, expected, choice_text(choice, ex), choice.get("finish_reason"))
    if verdict.result == "fail":
        fail(verdict.message, ex.evidence(f"stop={stop!r}", f"expected text: {expected!r}"))
    if verdict.result == "inconclusive":
        pytest.skip("inconclusive: " + verdict.message)
    if "stream" not in target.profile.claims:
        return
    streamed = complete(wire, target, temperature=0, max_tokens=MAX_TOKENS, stop=[stop], stream=True)
    acc = assemble(expect_stream(streamed, "the same completion streamed"), "completions").get(0)
    verdict = stop_verdict(stop, expected, acc.content if acc else "", acc.finish_reason if acc else None)
    if verdict.result == "fail":
        fail("streamed: " + verdict.message, streamed.evidence(f"stop={stop!r}"))


@check("completions.logprobs.shape", surface="completions", claims=("logprobs",),
       rationale="`logprobs: 2` must give the legacy parallel lists tokens/token_logprobs/top_logprobs/"
                 "text_offset of equal length, up to 2 alternatives per token, offsets non-decreasing.")
def test_completions_logprobs_shape(wire, target) -> None:
    ex = complete(wire, target, temperature=0, max_tokens=8, logprobs=2)
    choice = first_choice(expect_object(ex, "a completion with logprobs"), ex)
    problems = completion_logprob_problems(choice.get("logprobs"), 2, choice_text(choice, ex))
    expect_no_problems(ex, problems)


@check("completions.prompt-forms", surface="completions",
       rationale="`prompt` may be a string, an array of strings, a token array or an array of token arrays; "
                 "batch clients send the array forms and expect one choice per prompt, indexed in order.")
def test_completions_prompt_forms(wire, target) -> None:
    forms: list[tuple[str, Any, int]] = [("a string", "Hello", 1), ("an array of strings", ["Hello", "Goodbye"], 2),
                                         ("a token array", [100, 101, 102], 1),
                                         ("an array of token arrays", [[100, 101], [102, 103, 104]], 2)]
    for what, prompt, count in forms:
        ex = complete(wire, target, prompt, max_tokens=2, temperature=0)
        body = expect_object(ex, f"a completion whose prompt is {what}")
        choices = body.get("choices") if isinstance(body.get("choices"), list) else []
        indexes = sorted(c.get("index") for c in choices if isinstance(c, dict))
        if indexes != list(range(count)):
            fail(f"prompt as {what} ({count} prompts) returned choice indexes {indexes}", ex.evidence())


@check("completions.n.choices", surface="completions", claims=("n",),
       rationale="Two prompts with `n: 2` must give four choices indexed 0..3 (prompt-major, as OpenAI orders "
                 "them); batch clients map choices back to prompts by index.")
def test_completions_n_choices(wire, target) -> None:
    ex = complete(wire, target, ["Hello", "Goodbye"], n=2, max_tokens=2)
    body = expect_object(ex, "two prompts with n=2")
    choices = body.get("choices") if isinstance(body.get("choices"), list) else []
    indexes = sorted(c.get("index") for c in choices if isinstance(c, dict))
    if indexes != [0, 1, 2, 3]:
        fail(f"two prompts with n=2 returned choice indexes {indexes}, not [0, 1, 2, 3]", ex.evidence())


@check("completions.echo", surface="completions", claims=("echo",),
       rationale="`echo: true` prepends the prompt to the returned text; scoring harnesses rely on it.")
def test_completions_echo(wire, target) -> None:
    ex = complete(wire, target, "Echo this", echo=True, max_tokens=2)
    text = choice_text(first_choice(expect_object(ex, "a completion with echo"), ex), ex)
    if not text.startswith("Echo this"):
        fail(f"with echo the text {text[:80]!r} does not start with the prompt", ex.evidence())
