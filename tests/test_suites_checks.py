"""The request/response checks' pure judgements (suites/judge.py), and sdk.retries against a stub target."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from wirecheck.spec import sse
from wirecheck.suites import judge
from wirecheck.suites.registry import CHECKS

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------ stops


def test_pick_stop_takes_a_first_occurrence_from_the_middle():
    text = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    stop, before = judge.pick_stop(text)
    assert stop in text and text.find(stop) == len(before) > 0
    assert stop.strip() and len(stop) >= 2


def test_pick_stop_needs_enough_text():
    assert judge.pick_stop("Hi.") is None
    assert judge.pick_stop("") is None


def test_pick_stop_skips_whitespace_only_windows():
    stop, before = judge.pick_stop("ab" + " " * 20 + "cd")
    assert stop.strip()


def test_stop_verdicts():
    assert judge.stop_verdict(" 10", "1, 2", "1, 2", "stop").result == "pass"
    leaked = judge.stop_verdict(" 10", "1, 2", "1, 2 10", "stop")
    assert leaked.result == "fail" and "appears" in leaked.message
    assert judge.stop_verdict(" 10", "1, 2", "1, 2", "length").result == "fail"
    assert judge.stop_verdict(" 10", "1, 2", "something else", "length").result == "inconclusive"
    assert judge.stop_verdict(" 10", "1, 2", "something else", "stop").result == "inconclusive"
    assert judge.stop_verdict(" 10", "1, 2", None, "stop").result == "inconclusive"


def test_a_stop_string_partly_kept_fails_streamed_or_not():
    """transformers serve 5.25 answers stop=[" 10, "] with "1, ..., 9, 10," (finish_reason "stop"): the stop string
    is not a substring, yet the output keeps " 10," of it. Judged against the text that should precede the stop."""
    expected, stop = "1, 2, 3, 4, 5, 6, 7, 8, 9,", " 10, "
    kept = judge.stop_verdict(stop, expected, expected + " 10,", "stop")
    assert kept.result == "fail" and "first 4 of the stop string's 5 characters" in kept.message
    assert judge.stop_verdict(stop, expected, expected + " ", "stop").result == "fail"
    assert judge.stop_verdict(stop, expected, expected, "stop").result == "pass"


def test_template_token_leaks():
    assert judge.template_token_leaks("Hello<|im_end|>") == ["<|im_end|>"]
    assert judge.template_token_leaks("Hello </s>") == ["</s>"]
    assert judge.template_token_leaks("<s>old</s> new") == []  # HTML strikethrough, not an EOS token
    assert judge.template_token_leaks("plain") == [] and judge.template_token_leaks(None) == []


# ------------------------------------------------------------------------------------------------ usage


def test_usage_arithmetic():
    assert judge.usage_problems({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}) == []
    assert "!=" in judge.usage_problems({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 4})[0]
    assert judge.usage_problems({"prompt_tokens": 3, "completion_tokens": 4.0, "total_tokens": 7})
    assert judge.usage_problems({"prompt_tokens": True, "completion_tokens": 4, "total_tokens": 7})
    assert judge.usage_problems(None)
    assert judge.usage_problems({"prompt_tokens": 3, "total_tokens": 3}, completion_expected=False) == []
    reasoning = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                 "completion_tokens_details": {"reasoning_tokens": 9}}
    assert "reasoning_tokens" in judge.usage_problems(reasoning)[0]


def test_schema_problems_name_the_field():
    body = {"id": "x", "object": "chat.completion", "created": "soon", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    problems = judge.schema_problems("CreateChatCompletionResponse", body)
    assert len(problems) == 1 and problems[0].startswith("created:")


# --------------------------------------------------------------------------------------------- logprobs


def _entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in top]}


def test_chat_logprobs_good():
    lp = {"content": [_entry("Hé", -0.1, [("Hé", -0.1), ("Ho", -2.0)]), _entry("!", -0.5, [("!", -0.5), (".", -1)])],
          "refusal": None}
    assert judge.chat_logprob_problems(lp, 2, "Hé!") == []
    assert judge.chat_logprob_problems(lp, 2, "Hé!", strict=True) == []


def test_chat_logprobs_dropped_unsorted_wrong_bytes_and_counts():
    assert judge.chat_logprob_problems(None, 2, "x") == ["choice.logprobs is None; logprobs were requested"]
    assert judge.chat_logprob_problems({"content": []}, 2, "x")
    unsorted = {"content": [_entry("a", -1.0, [("b", -2.0), ("a", -1.0)])]}
    assert any("sorted" in p for p in judge.chat_logprob_problems(unsorted, 2, "a"))
    bad_bytes = {"content": [{**_entry("a", -1.0, [("a", -1.0)]), "bytes": [98]}]}
    assert any("UTF-8 bytes" in p for p in judge.chat_logprob_problems(bad_bytes, 1, "a"))
    too_many = {"content": [_entry("a", -1.0, [("a", -1.0), ("b", -2.0), ("c", -3.0)])]}
    assert any("3 entries" in p for p in judge.chat_logprob_problems(too_many, 2, "a"))
    fewer = {"content": [_entry("a", -1.0, [("a", -1.0)])]}
    assert judge.chat_logprob_problems(fewer, 2, "a") == []
    assert judge.chat_logprob_problems(fewer, 2, "a", strict=True)
    positive = {"content": [_entry("a", 0.5, [("a", -1.0)])]}
    assert any("<= 0" in p for p in judge.chat_logprob_problems(positive, 1, "a"))
    assert any("join" in p for p in judge.chat_logprob_problems(fewer, 2, "ab"))


def test_chat_logprobs_bytes_form_tokens_and_partial_characters():
    # A token holding half of a multi-byte character: `bytes:` form token, raw bytes; they still join to content.
    euro = "€".encode()
    lp = {"content": [{"token": "bytes:\\xe2\\x82", "logprob": -0.1, "bytes": list(euro[:2]), "top_logprobs": []},
                      {"token": "bytes:\\xac", "logprob": -0.1, "bytes": list(euro[2:]), "top_logprobs": []}]}
    assert judge.chat_logprob_problems(lp, 0, "€") == []


def test_completion_logprobs():
    good = {"tokens": [" a", " b"], "token_logprobs": [-0.1, -0.2], "top_logprobs": [{" a": -0.1}, {" b": -0.2}],
            "text_offset": [0, 2]}
    assert judge.completion_logprob_problems(good, 2, " a b") == []
    assert judge.completion_logprob_problems(None, 2, "x")
    ragged = {**good, "text_offset": [0]}
    assert "differ in length" in judge.completion_logprob_problems(ragged, 2, " a b")[0]
    backwards = {**good, "text_offset": [2, 0]}
    assert any("non-decreasing" in p for p in judge.completion_logprob_problems(backwards, 2, " a b"))
    wide = {**good, "top_logprobs": [{" a": -0.1, "x": -1, "y": -2}, {" b": -0.2}]}
    assert judge.completion_logprob_problems(wide, 2, " a b")


# ------------------------------------------------------------------------------------------- embeddings


def test_base64_float32_round_trip_and_float64_detected():
    values = [0.25, -1.5, 3.125]
    as32 = base64.b64encode(struct.pack("<3f", *values)).decode()
    assert judge.decode_base64_floats(as32) == values
    as64 = base64.b64encode(struct.pack("<3d", *values)).decode()
    decoded = judge.decode_base64_floats(as64)  # six meaningless float32 values
    assert len(decoded) == 6 and judge.max_abs_diff(decoded, values) == float("inf")
    with pytest.raises(ValueError):
        judge.decode_base64_floats("not base64!")
    with pytest.raises(ValueError):
        judge.decode_base64_floats(base64.b64encode(b"abc").decode())


def test_nearest_and_cosine():
    refs = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    assert judge.nearest([0.1, 0.9], refs) == 1
    assert judge.cosine([1.0, 0.0], [1.0]) == -2.0


# ----------------------------------------------------------------------------------------------- errors


def test_envelope_good_and_strict():
    body = json.dumps({"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}})
    assert judge.envelope_problems(400, "application/json", body.encode()) == []
    partial = json.dumps({"error": {"message": "bad", "type": "invalid_request_error"}}).encode()
    assert judge.envelope_problems(400, "application/json; charset=utf-8", partial) == []
    assert judge.envelope_problems(400, "application/json", partial, strict=True)


def test_envelope_catches_fastapi_flat_html_and_plain_text():
    fastapi = json.dumps({"detail": [{"loc": ["body", "temperature"], "msg": "too big"}]}).encode()
    assert "FastAPI" in judge.envelope_problems(422, "application/json", fastapi)[0]
    flat = json.dumps({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400}).encode()
    assert "flat object" in judge.envelope_problems(400, "application/json", flat)[0]
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    problems = judge.envelope_problems(502, "text/html", html)
    assert any("content type" in p for p in problems) and any("not JSON" in p for p in problems)
    assert judge.envelope_problems(400, "application/json", b'{"error": "bad"}')
    assert judge.error_field(b'{"error": {"param": "temperature"}}', "param") == "temperature"
    assert judge.error_field(b"<html>", "param") is None


def test_retry_after_parsing_as_the_sdk_does():
    assert judge.parse_retry_after({"Retry-After": "3"}) == 3.0
    assert judge.parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert judge.parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert judge.parse_retry_after({"retry-after": "soon"}) is None
    assert judge.parse_retry_after({}) is None


def test_retry_after_problems():
    assert judge.retry_after_problems(429, {"retry-after": "2"}) == []
    assert "without Retry-After" in judge.retry_after_problems(429, {})[0]
    assert "not seconds" in judge.retry_after_problems(503, {"retry-after": "later"})[0]
    assert "gives up" in judge.retry_after_problems(429, {"retry-after": "600"})[0]
    assert judge.retry_after_problems(429, {"retry-after-ms": "250"}) == []


# ----------------------------------------------------------------------------------------------- streams


def _chunk(index: int, **delta) -> bytes:
    finish = delta.pop("finish", None)
    return sse.encode_json({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


def test_assemble_chat_stream_per_choice():
    body = (b": keep-alive\n\n" + _chunk(0, role="assistant", content="") + _chunk(1, role="assistant", content="")
            + _chunk(0, content="Hel") + _chunk(1, content="Bye") + _chunk(0, content="lo")
            + _chunk(0, finish="stop") + _chunk(1, finish="length") + sse.DONE)
    out = judge.assemble(sse.parse(body))
    assert out[0].content == "Hello" and out[0].roles == ["assistant"] and out[0].finish_reason == "stop"
    assert out[1].content == "Bye" and out[1].finish_reasons == ["length"]
    crlf = judge.assemble(sse.parse(body.replace(b"\n", b"\r\n")))
    assert crlf[0].content == "Hello"


def test_assemble_completions_stream():
    body = (sse.encode_json({"choices": [{"index": 0, "text": " a", "finish_reason": None}]})
            + sse.encode_json({"choices": [{"index": 0, "text": " b", "finish_reason": "stop"}]})
            + sse.encode_json({"choices": [], "usage": {"prompt_tokens": 1}}) + sse.DONE)
    out = judge.assemble(sse.parse(body), "completions")
    assert out[0].content == " a b" and out[0].finish_reason == "stop"


# ------------------------------------------------------------------------------------------ registrations


def test_check_metadata_is_complete():
    import wirecheck.suites.test_auth  # noqa: F401
    import wirecheck.suites.test_chat  # noqa: F401
    import wirecheck.suites.test_completions  # noqa: F401
    import wirecheck.suites.test_embeddings  # noqa: F401
    import wirecheck.suites.test_errors  # noqa: F401
    import wirecheck.suites.test_models  # noqa: F401
    import wirecheck.suites.test_sdk  # noqa: F401

    ids = {"chat.response-schema", "chat.usage.arithmetic", "chat.n.choices", "chat.stop.excluded",
           "chat.max-completion-tokens", "chat.logprobs.shape", "chat.determinism",
           "chat.request.unknown-fields-ignored", "chat.request.assistant-content-null",
           "chat.request.assistant-content-empty", "chat.request.assistant-content-absent",
           "completions.response-schema", "completions.usage.arithmetic", "completions.stop.excluded",
           "completions.logprobs.shape", "completions.prompt-forms", "embeddings.response-schema",
           "embeddings.base64-is-string", "embeddings.base64-matches-float", "embeddings.index-order",
           "embeddings.dimensions", "embeddings.input-forms", "models.schema", "models.retrieve-consistent",
           "models.unknown-404", "errors.status-code", "errors.envelope", "errors.param-named",
           "errors.malformed-json", "errors.unknown-model", "errors.context-length", "errors.unknown-route",
           "http.deadline", "auth.enforced", "sdk.chat.create", "sdk.chat.stream", "sdk.chat.stream-helper",
           "sdk.chat.with-raw-response", "sdk.completions.create", "sdk.embeddings.default-base64",
           "sdk.models.list-retrieve", "sdk.errors.classes", "sdk.retries"}
    assert ids <= set(CHECKS)
    for check_id in ids:
        info = CHECKS[check_id]
        assert len(info.rationale) > 40, check_id
        assert info.paths == (("sdk",) if check_id.startswith("sdk.") else ("raw",)), check_id
    assert CHECKS["errors.param-named"].strict and CHECKS["chat.determinism"].claims == ("determinism", "stream")


# ------------------------------------------------------------------------------------ sdk.retries, live


class _RateLimited(BaseHTTPRequestHandler):
    retry_after: str | None = None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                                     "code": "rate_limit_exceeded"}}).encode()
        self.send_response(429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.retry_after is not None:
            self.send_header("Retry-After", self.retry_after)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _run_retries_check(tmp_path: Path, retry_after: str | None) -> dict:
    handler = type("Handler", (_RateLimited,), {"retry_after": retry_after})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    report = tmp_path / f"retries-{retry_after}.json"
    try:
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "suites/test_sdk.py",
                        "--target", f"http://127.0.0.1:{server.server_address[1]}", "--model", "m",
                        "--deadline", "5", "-m", "wirecheck(id='sdk.retries')", "--report", str(report)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    records = json.loads(report.read_text())["checks"]
    return next(r for r in records if r["id"] == "sdk.retries")


def test_sdk_retries_fails_a_429_without_retry_after_and_passes_one_with_it(tmp_path):
    missing = _run_retries_check(tmp_path, None)
    assert missing["result"] == "fail" and "without Retry-After" in missing["message"]
    assert _run_retries_check(tmp_path, "1")["result"] == "pass"


def test_unasked_usage_is_described_as_seen():
    """The verdict names what came: usage riding on chunks (LiteLLM) or a separate `choices: []` chunk (vLLM)."""
    from wirecheck.reference_server.faults.transforms import Context, apply_stream
    from wirecheck.suites.streams import unasked_usage

    head = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    chunks = [{**head, "choices": [{"index": 0, "text": t, "finish_reason": f}]}
              for t, f in ((" there", None), (" was", None), ("", "length"))]
    plain = b"".join(sse.encode_json(c) for c in chunks) + sse.DONE
    riding = sse.parse(b"".join(apply_stream("json.usage-every-chunk", plain, Context())))
    found = [n for n, c in enumerate((it.json() for it in riding if it.has_data and not it.is_done), 1) if c.get("usage")]
    said = unasked_usage(riding, found)
    assert said == "usage on 3 of the 3 chunks that carry choices (#1, #2, #3)" and "choices: []" not in said
    trailer = {**head, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    extra = sse.parse(plain.replace(sse.DONE, sse.encode_json(trailer) + sse.DONE))
    assert unasked_usage(extra, [4]).startswith("a `choices: []` usage chunk (#4)")
