"""`wirecheck proxy` in process, in front of a canned upstream: fault selection, scoping and pass-through."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wirecheck.cli import build_parser, main
from wirecheck.reference_server.faults.proxy import FaultProxy
from wirecheck.spec import sse

CHUNKS = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]},
          {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
STREAM = b"".join(sse.encode_json(c) for c in CHUNKS) + sse.DONE
seen: list[dict] = []


async def chat(request: Request) -> Response:
    body = await request.json()
    seen.append({"path": request.url.path, "body": body, "auth": request.headers.get("authorization")})
    if body.get("temperature") == 9:
        return JSONResponse({"error": {"message": "bad temperature", "type": "invalid_request_error",
                                       "param": "temperature", "code": None}}, status_code=400)
    if body.get("stream"):
        async def gen():
            for piece in (STREAM[:10], STREAM[10:]):
                yield piece
        return StreamingResponse(gen(), media_type="text/event-stream")
    return JSONResponse({"id": "c2", "object": "chat.completion", "created": 1, "model": "m",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


async def models(request: Request) -> Response:
    seen.append({"path": request.url.path, "query": request.url.query})
    return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "x"}]})


UPSTREAM = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/completions", chat, methods=["POST"]),
                             Route("/v1/models", models), Route("/v1/models/{m:path}", models)])


def call(fault: str, method: str, path: str, body=None, headers=None, key: str | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        proxy = FaultProxy("http://upstream.test/v1", fault, upstream_key=key)
        proxy.client = httpx.AsyncClient(transport=httpx.ASGITransport(UPSTREAM))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(proxy.app()), base_url="http://proxy") as c:
            response = await c.request(method, path, json=body, headers=headers)
            await response.aread()
        await proxy.client.aclose()
        return response

    seen.clear()
    return asyncio.run(go())


STREAM_BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}


def test_transparent_proxy_passes_bytes_and_query() -> None:
    r = call("none", "POST", "/v1/chat/completions", STREAM_BODY)
    assert r.status_code == 200 and r.content == STREAM
    assert r.headers["content-type"].startswith("text/event-stream")
    r = call("none", "GET", "/v1/models?limit=2")
    assert r.json()["data"][0]["owned_by"] == "x" and seen[0]["query"] == "limit=2"


def test_fixed_fault_and_per_path_fault() -> None:
    assert b"[DONE]" not in call("missing-done", "POST", "/v1/chat/completions", STREAM_BODY).content
    assert b"[DONE]" not in call("none", "POST", "/fault/missing-done/v1/chat/completions", STREAM_BODY).content
    # the per-path prefix wins over the fixed fault, and is not forwarded upstream
    assert call("missing-done", "POST", "/fault/none/v1/chat/completions", STREAM_BODY).content == STREAM
    assert seen[0]["path"] == "/v1/chat/completions"


def test_unknown_fault_is_a_json_404() -> None:
    r = call("none", "GET", "/fault/no-such-fault/v1/models")
    assert r.status_code == 404 and "no-such-fault" in r.json()["error"]["message"]


def test_faults_apply_only_where_they_concern() -> None:
    # missing-done concerns chat streams: a completions stream and a non-streamed chat pass untouched
    assert call("missing-done", "POST", "/v1/completions", STREAM_BODY).content == STREAM
    plain = call("missing-done", "POST", "/v1/chat/completions", {**STREAM_BODY, "stream": False})
    assert plain.json()["object"] == "chat.completion"
    # chat-response-schema concerns non-streamed responses only
    assert call("chat-response-schema", "POST", "/v1/chat/completions", STREAM_BODY).content == STREAM
    broken = call("chat-response-schema", "POST", "/v1/chat/completions", {**STREAM_BODY, "stream": False}).json()
    assert "object" not in broken and broken["created"] == "1"


def test_request_stage_faults() -> None:
    call("usage-dropped", "POST", "/v1/chat/completions", {**STREAM_BODY, "stream_options": {"include_usage": True}})
    assert "stream_options" not in seen[0]["body"]
    r = call("unknown-field-rejected", "POST", "/v1/chat/completions", {**STREAM_BODY, "x_unknown": 1})
    assert r.status_code == 400 and seen == []
    r = call("model-retrieve-mismatch", "GET", "/v1/models/m")
    assert r.status_code == 404 and call("model-retrieve-mismatch", "GET", "/v1/models").status_code == 200
    call("auth-ignored", "POST", "/v1/chat/completions", STREAM_BODY, headers={"Authorization": "Bearer bad"},
         key="sk-good")
    assert seen[0]["auth"] == "Bearer sk-good"


def test_response_and_stream_faults() -> None:
    bad = {**STREAM_BODY, "stream": False, "temperature": 9}
    assert call("error-as-200", "POST", "/v1/chat/completions", bad).status_code == 200
    r = call("fastapi-422", "POST", "/v1/chat/completions", bad)
    assert r.status_code == 422 and "detail" in r.json()
    r = call("stream-wrong-content-type", "POST", "/v1/chat/completions", STREAM_BODY)
    assert r.headers["content-type"] == "application/json" and r.content == STREAM
    r = call("benign-crlf", "POST", "/v1/chat/completions", STREAM_BODY)
    assert [i.data for i in sse.parse(r.content)] == [i.data for i in sse.parse(STREAM)] and b"\r\n" in r.content
    r = call("buffered-stream", "POST", "/v1/chat/completions", STREAM_BODY)
    assert r.content == STREAM
    r = call("models-missing-owned-by", "GET", "/v1/models")
    assert "owned_by" not in r.json()["data"][0]


def test_cli_registers_proxy(capsys) -> None:
    argv = ["proxy", "--upstream", "http://x", "--fault", "drip", "--port", "9"]
    args = build_parser(argv).parse_args(argv)
    assert (args.command, args.fault, args.port) == ("proxy", "drip", 9)
    assert main(["proxy", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "missing-done" in listed and "chat.stream.done-sentinel" in listed
    assert main(["proxy", "--upstream", "http://x", "--fault", "nope"]) == 2
    assert "no fault 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("fault", ["hang", "endless-stream", "drip"])
def test_hostile_faults_stop_when_the_client_gives_up(fault) -> None:
    async def go() -> float:
        proxy = FaultProxy("http://upstream.test", fault)
        proxy.client = httpx.AsyncClient(transport=httpx.ASGITransport(UPSTREAM))
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(proxy.app()), base_url="http://proxy") as c:
            with pytest.raises((asyncio.TimeoutError, TimeoutError)):
                async with asyncio.timeout(1.0):
                    async with c.stream("POST", "/v1/chat/completions", json=STREAM_BODY) as r:
                        async for _ in r.aiter_bytes():
                            pass
        await proxy.client.aclose()
        return loop.time() - start

    assert asyncio.run(go()) < 5


def test_proxy_body_is_valid_json_after_json_faults() -> None:
    r = call("usage-arithmetic", "POST", "/v1/chat/completions", {**STREAM_BODY, "stream": False})
    usage = json.loads(r.content)["usage"]
    assert usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]
