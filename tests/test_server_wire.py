"""Raw HTTP against `wirecheck serve`: statuses, envelopes and SSE bytes a client sees."""

from __future__ import annotations

import json

import pytest

from wirecheck.spec import errors as spec_errors, sse

from .conftest import wait_until

HELLO = {"model": "tiny", "messages": [{"role": "user", "content": "Echo: red fox"}]}


def envelope(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_json_is_400(http, raw):
    r = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    envelope(r)


@pytest.mark.parametrize("patch,param", [
    ({"temperature": 3}, "temperature"),
    ({"n": 0}, "n"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"logit_bias": {"not-a-token": 5}}, "logit_bias"),
    ({"quantization": "int4"}, "quantization"),
    ({"quantization": "fp64"}, "quantization"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]},
     "messages[0].content[0].type"),
])
def test_invalid_requests_name_the_param(http, patch, param):
    r = http.post("/v1/chat/completions", json={**HELLO, **patch})
    assert r.status_code == 400, r.text
    assert envelope(r)["param"] == param


def test_missing_model_and_messages(http):
    for drop in ("model", "messages"):
        body = {k: v for k, v in HELLO.items() if k != drop}
        r = http.post("/v1/chat/completions", json=body)
        assert r.status_code == 400 and envelope(r)["param"] == drop


def test_unknown_fields_are_ignored(http):
    r = http.post("/v1/chat/completions", json={**HELLO, "max_tokens": 2, "x_vendor_thing": {"a": 1}})
    assert r.status_code == 200


def test_unknown_route_and_method(http):
    r = http.post("/v1/does-not-exist", json={})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    envelope(r)
    r = http.get("/v1/chat/completions")
    assert r.status_code == 405
    envelope(r)


def test_body_too_large_is_413(http):
    big = {**HELLO, "messages": [{"role": "user", "content": "x" * 300_000}]}
    r = http.post("/v1/chat/completions", json=big)
    assert r.status_code == 413
    envelope(r)


def test_unknown_model_is_404(http):
    r = http.post("/v1/embeddings", json={"model": "nope", "input": "x"})
    assert r.status_code == 404 and envelope(r)["code"] == "model_not_found"


def test_embedding_input_errors(http):
    for body, param in (({"input": ""}, "input"), ({"input": []}, "input"), ({"input": [[10**9]]}, "input"),
                        ({"input": "x", "dimensions": 100000}, "dimensions"),
                        ({"input": "x", "encoding_format": "int8"}, "encoding_format")):
        r = http.post("/v1/embeddings", json={"model": "tiny", **body})
        assert r.status_code == 400, (body, r.text)
        assert envelope(r)["param"] == param


def test_completions_unsupported_options_are_refused_not_ignored(http):
    for body, param in (({"suffix": "end"}, "suffix"), ({"best_of": 3}, "best_of"),
                        ({"echo": True, "logprobs": 1}, "echo")):
        r = http.post("/v1/completions", json={"model": "tiny", "prompt": "x", **body})
        assert r.status_code == 400 and envelope(r)["param"] == param


def test_stream_is_sse_with_done_sentinel(http):
    with http.stream("POST", "/v1/chat/completions", json={**HELLO, "stream": True, "max_tokens": 8}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read()
    items = sse.parse(body)
    assert items[-1].is_done and body.endswith(b"data: [DONE]\n\n")
    assert all(it.kind == "event" and it.event is None for it in items)
    chunks = [json.loads(it.data) for it in items[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"]


def test_model_path_with_slash_is_decoded(http):
    r = http.get("/v1/models/org%2Fnope")
    assert r.status_code == 404 and "org/nope" in envelope(r)["message"]


def test_missing_key_is_401(keyed_server):
    import httpx

    r = httpx.post(keyed_server.base_url + "/v1/chat/completions", json=HELLO)
    assert r.status_code == 401 and envelope(r)["code"] == "invalid_api_key"
    r = httpx.get(keyed_server.base_url + "/v1/models", headers={"authorization": "Bearer sk-test-one"})
    assert r.status_code == 200


def _running(http) -> int:
    """Sequences the engine holds: decoding now or about to start."""
    load = http.get("/health").json()
    return load["running"] + load["waiting"]


def test_client_disconnect_cancels_generation(http):
    body = {**HELLO, "stream": True, "max_tokens": 1500, "min_tokens": 1500, "temperature": 1.0}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        chunks = r.iter_raw()
        next(chunks)  # the stream is live; keep the iterator referenced so the response stays open
        assert wait_until(lambda: _running(http) >= 1)
    assert wait_until(lambda: _running(http) == 0), "the engine kept generating for a client that hung up"


def test_non_streaming_disconnect_cancels_generation(server):
    import socket

    import httpx

    payload = json.dumps({**HELLO, "max_tokens": 1500, "min_tokens": 1500}).encode()
    with httpx.Client(base_url=server.base_url) as c:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            assert wait_until(lambda: _running(c) >= 1)
        assert wait_until(lambda: _running(c) == 0), "the engine kept generating for a client that hung up"


def _conforms(component: str, obj) -> None:
    problems = spec_errors(component, obj, strict=True)
    assert not problems, f"{component}: {problems[:3]}"


def test_every_response_and_chunk_conforms_to_our_spec(http):
    chat = {**HELLO, "max_tokens": 6, "logprobs": True, "top_logprobs": 2, "n": 2}
    _conforms("CreateChatCompletionResponse", http.post("/v1/chat/completions", json=chat).json())
    body = http.post("/v1/chat/completions", json={**chat, "stream": True,
                                                    "stream_options": {"include_usage": True}}).content
    chunks = [json.loads(it.data) for it in sse.parse(body) if it.kind == "event" and not it.is_done]
    for chunk in chunks:
        _conforms("CreateChatCompletionStreamResponse", chunk)
    completion = {"model": "tiny", "prompt": ["a", "b"], "max_tokens": 4, "logprobs": 2, "stream": False}
    _conforms("CreateCompletionResponse", http.post("/v1/completions", json=completion).json())
    body = http.post("/v1/completions", json={**completion, "stream": True}).content
    for it in sse.parse(body):
        if it.kind == "event" and not it.is_done:
            _conforms("CreateCompletionResponse", json.loads(it.data))
    for fmt in ("float", "base64"):
        r = http.post("/v1/embeddings", json={"model": "tiny", "input": ["x", "y"], "encoding_format": fmt})
        _conforms("CreateEmbeddingResponse", r.json())
    _conforms("ListModelsResponse", http.get("/v1/models").json())
    _conforms("Model", http.get("/v1/models/tiny").json())
    _conforms("ErrorResponse", http.post("/v1/chat/completions", json={"model": "tiny"}).json())


def test_base_url_probe_answers(http):
    # Claude Code probes HEAD / before its first request; a 404 there reads as "server down".
    assert http.head("/").status_code == 200
    assert http.get("/").json()["status"] == "ok"


def test_a_dead_engine_process_is_a_503_not_a_hang():
    """With the engine in its own process (the default), its death makes /health and every generation answer 503
    in the error envelope at once, instead of waiting forever on a pipe nobody writes."""
    import signal

    import httpx
    import psutil

    from wirecheck.suites.serve import running

    from .conftest import wait_until

    with running() as server:
        engine = [c for c in psutil.Process(server.proc.pid).children() if "spawn_main" in " ".join(c.cmdline())
                  and "resource_tracker" not in " ".join(c.cmdline())]
        assert len(engine) == 1
        engine[0].send_signal(signal.SIGKILL)
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            # The server reaps its child when it next asks whether it lives: /health asks.
            assert wait_until(lambda: http.get("/health").status_code == 503)
            answer = http.post("/v1/chat/completions", json={"model": "tiny", "max_tokens": 4,
                                                             "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 503 and answer.json()["error"]["code"] == "engine_unavailable"


def test_openai_processing_ms_on_openai_paths_only(http):
    """api.openai.com answers with `openai-processing-ms` (its time to the response), and some clients read it
    unconditionally (openai-php/client issue 218: "Undefined array key"); Anthropic's API does not send it."""
    ok = http.post("/v1/chat/completions", json={"model": "tiny", "max_tokens": 2,
                                                 "messages": [{"role": "user", "content": "hi"}]})
    rejected = http.post("/v1/embeddings", json={"model": "tiny", "input": []})
    for response in (ok, rejected, http.get("/v1/models")):
        assert response.headers["openai-processing-ms"].isdigit(), response.headers
    claude = http.post("/v1/messages", json={"model": "tiny", "max_tokens": 2,
                                             "messages": [{"role": "user", "content": "hi"}]},
                       headers={"anthropic-version": "2023-06-01"})
    assert claude.status_code == 200 and "openai-processing-ms" not in claude.headers
