"""A synthetic-schedule OpenAI chat SSE server: the ground truth for the accuracy benchmark.

    python -m wirecheck.load.synthetic_server --port P [--host 127.0.0.1] [--ttft-ms 50] [--itl-ms 5] [--tokens 64]
        [--tokens-per-event 1] [--mode normal|buffer] [--buffer-bytes 16384] [--busy-poll]

Token event i of a request is due at t_recv + ttft + i * itl * tokens_per_event: ABSOLUTE deadlines, so
sleep overshoot never accumulates (research/load.md 6.3). One pacer task sleeps coarsely, spins the last
stretch and writes each due frame itself, stamping perf_counter_ns right after ``transport.write`` (the
send syscall happens inside it when the socket buffer is empty). Stamps and deadlines are served at
``GET /debug/timings/<x-request-id>`` (all kept requests at ``GET /debug/timings``); the server's own
lateness stats at ``GET /debug/jitter``; ``POST /debug/reset`` clears both. Mode ``buffer`` emulates a
buffering proxy (research P6): frames are produced on the same schedule (their would-be send times are
the recorded truth) but held until ``--buffer-bytes`` are pending or the stream ends. Request-body
extension fields ``synthetic_ttft_ms``, ``synthetic_itl_ms``, ``synthetic_tokens_per_event`` and
``synthetic_mode`` override the knobs per request; ``max_tokens`` sets the token count.

Stdlib only, HTTP/1.1 parsed by hand (keep-alive, chunked responses, TCP_NODELAY), so the server's own
cost per event stays small and nothing between the schedule and the socket can buffer.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import itertools
import json
import socket
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MODEL = "synthetic"
SPIN_NS = 1_500_000  # the loop's select() rounds timeouts up to whole ms; spin the last 1.5 ms
MAX_TIMINGS = 200_000  # requests whose timings are kept (oldest dropped first)
MAX_LATENESS = 2_000_000  # lateness samples kept for /debug/jitter


@dataclass
class Knobs:
    ttft_ms: float = 50.0
    itl_ms: float = 5.0
    tokens: int = 64
    tokens_per_event: int = 1
    mode: str = "normal"
    buffer_bytes: int = 16384
    busy_poll: bool = False


@dataclass
class Timing:
    recv_ns: int
    tokens_per_event: int
    mode: str
    headers_ns: int = 0
    sends_ns: list[int] = field(default_factory=list)
    deadlines_ns: list[int] = field(default_factory=list)
    queued: int = 0  # events written behind unsent bytes: their stamps precede the real send
    done: bool = False

    def as_json(self) -> dict:
        return {"recv_ns": self.recv_ns, "headers_ns": self.headers_ns, "sends_ns": self.sends_ns,
                "deadlines_ns": self.deadlines_ns, "tokens_per_event": self.tokens_per_event,
                "mode": self.mode, "queued_events": self.queued, "done": self.done}


class Pacer:
    """Runs callbacks at absolute perf_counter_ns deadlines: sleep until SPIN_NS before, then spin.

    With ``busy`` it never sleeps: the loop polls sockets without blocking, so a request is read the
    moment it lands instead of after the CPU wakes from idle (100s of us on a VM). Costs a whole CPU.

    One task does the spinning (yielding with sleep(0) so other streams keep running), so the cost of
    fine timing does not grow with the number of streams.
    """

    def __init__(self, busy: bool = False) -> None:
        self.busy = busy
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._sleeper: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def at(self, deadline_ns: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (deadline_ns, next(self._seq), fn))
        self.start()
        if self._heap[0][0] == deadline_ns and self._sleeper is not None and not self._sleeper.done():
            self._sleeper.set_result(None)  # a new earliest deadline: recompute the sleep

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while True:
            now = time.perf_counter_ns()
            if not self.busy and (not heap or heap[0][0] - now > SPIN_NS):
                self._sleeper = loop.create_future()
                delay = (heap[0][0] - now - SPIN_NS) / 1e9 if heap else 3600.0
                handle = loop.call_later(delay, _resolve, self._sleeper)
                await self._sleeper
                handle.cancel()
                continue
            while heap and heap[0][0] <= now:
                try:
                    heapq.heappop(heap)[2]()
                except Exception:  # one broken stream must not stop the pacing of all the others
                    traceback.print_exc()
            await asyncio.sleep(0)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def sse(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return b"data: " + data.encode() + b"\n\n"


class Stream:
    """One streamed chat completion, driven by pacer callbacks: each writes (or, in buffer mode, holds)
    its event, stamps it, builds the next event and books it. No coroutine wakes per event, so the
    server's cost per event stays a few microseconds and it does not need to be faster than asyncio.
    """

    def __init__(self, server: Server, writer: asyncio.StreamWriter, timing: Timing, frame: tuple[str, str],
                 tokens: int, tail: bytes) -> None:
        self.transport = writer.transport
        self.pacer = server.pacer
        self.lateness = server.lateness
        self.buffer_bytes = server.knobs.buffer_bytes
        self.timing = timing
        self.left, self.right = frame
        self.tokens = tokens
        self.tail = tail
        self.pending = bytearray()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.event = b""

    def start(self) -> None:
        self.event = self.build(0)
        self.pacer.at(self.timing.deadlines_ns[0], self.send)

    def build(self, i: int) -> bytes:
        """SSE event i: tokens_per_event tokens; the last one carries finish_reason."""
        per = self.timing.tokens_per_event
        text = "".join([f" w{j}" for j in range(i * per, min(self.tokens, (i + 1) * per))])
        right = self.right  # '}}]}': closes delta, choice, choices, chunk
        if i == len(self.timing.deadlines_ns) - 1:
            right = '},"finish_reason":"length"' + right[1:]
        return f'data: {self.left}"{text}"{right}\n\n'.encode()

    def send(self) -> None:
        timing = self.timing
        i = len(timing.sends_ns)
        if self.transport.is_closing():  # the client went away: stop the chain
            _resolve(self.finished)
            return
        if timing.mode == "buffer":
            self.pending += self.event
            t = time.perf_counter_ns()  # would-be send time: the truth the client should have seen
            if len(self.pending) >= self.buffer_bytes:
                self.flush()
        else:
            if self.transport.get_write_buffer_size():
                timing.queued += 1
            self.transport.write(chunk(self.event))
            t = time.perf_counter_ns()
        timing.sends_ns.append(t)
        if len(self.lateness) < MAX_LATENESS:
            self.lateness.append(t - timing.deadlines_ns[i])
        if i + 1 < len(timing.deadlines_ns):
            self.event = self.build(i + 1)  # after the stamp: costs the next event nothing
            self.pacer.at(timing.deadlines_ns[i + 1], self.send)
        else:
            self.pending += self.tail
            self.flush(b"0\r\n\r\n")
            _resolve(self.finished)

    def flush(self, last: bytes = b"") -> None:
        """Write what is held as ONE chunk (a proxy re-chunks what it buffered), plus ``last``."""
        if not self.transport.is_closing():
            self.transport.write((chunk(bytes(self.pending)) if self.pending else b"") + last)
        self.pending.clear()


class Server:
    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.pacer = Pacer(knobs.busy_poll)
        self.ids = itertools.count(1)
        self.timings: OrderedDict[str, Timing] = OrderedDict()
        self.lateness: list[int] = []
        self.created = int(time.time())
        self.connections = 0  # accepted since the last reset: shows whether clients keep connections alive

    # -- HTTP/1.1 ---------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # research P8: no Nagle stalls
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    await self.respond(writer, 400, {"error": "bad request line"}, "", keep=False)
                    return
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                try:
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    return
                recv_ns = time.perf_counter_ns()
                keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                try:
                    await self.dispatch(writer, method, target.split("?", 1)[0], body, recv_ns, keep)
                except ConnectionError:
                    return
                if not keep or writer.transport.is_closing():
                    return
        finally:
            writer.close()

    async def respond(self, writer: asyncio.StreamWriter, status: int, obj: object, rid: str, keep: bool) -> None:
        body = json.dumps(obj).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
                f"x-request-id: {rid}\r\nconnection: {'keep-alive' if keep else 'close'}\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()

    async def dispatch(self, writer: asyncio.StreamWriter, method: str, path: str, body: bytes, recv_ns: int,
                       keep: bool) -> None:
        rid = f"syn-{next(self.ids)}"
        if path == "/v1/chat/completions" and method == "POST":
            try:
                req = json.loads(body or b"{}")
                if not isinstance(req, dict):
                    raise ValueError("body is not an object")
            except ValueError as exc:
                return await self.respond(writer, 400, {"error": {"message": str(exc), "type": "invalid_request"}},
                                          rid, keep)
            if req.get("stream"):
                return await self.stream(writer, req, rid, recv_ns, keep)
            return await self.complete(writer, req, rid, recv_ns, keep)
        if method != "GET" and not (method == "POST" and path == "/debug/reset"):
            return await self.respond(writer, 405, {"error": "method not allowed"}, rid, keep)
        if path == "/health":
            return await self.respond(writer, 200, {"status": "ok"}, rid, keep)
        if path == "/v1/models":
            model = {"id": MODEL, "object": "model", "created": self.created, "owned_by": "wirecheck"}
            return await self.respond(writer, 200, {"object": "list", "data": [model]}, rid, keep)
        if path == "/debug/timings":  # all kept requests at once: the bench joins thousands
            return await self.respond(writer, 200, {k: t.as_json() for k, t in self.timings.items()}, rid, keep)
        if path.startswith("/debug/timings/"):
            timing = self.timings.get(path.rsplit("/", 1)[1])
            if timing is None:
                return await self.respond(writer, 404, {"error": "unknown request id"}, rid, keep)
            return await self.respond(writer, 200, timing.as_json(), rid, keep)
        if path == "/debug/jitter":
            return await self.respond(writer, 200, {**jitter_stats(self.lateness), "connections": self.connections},
                                        rid, keep)
        if path == "/debug/reset":
            self.timings.clear()
            self.lateness.clear()
            self.connections = 0
            return await self.respond(writer, 200, {"reset": True}, rid, keep)
        return await self.respond(writer, 404, {"error": f"no route {path}"}, rid, keep)

    # -- chat completions ---------------------------------------------------------------------

    def knobs_for(self, req: dict) -> tuple[int, int, int, int, str]:
        """(tokens, ttft_ns, itl_ns, tokens_per_event, mode) for this request."""
        k = self.knobs
        tokens = int(req.get("max_tokens") or req.get("max_completion_tokens") or k.tokens)
        ttft = float(req.get("synthetic_ttft_ms", k.ttft_ms))
        itl = float(req.get("synthetic_itl_ms", k.itl_ms))
        per = max(1, int(req.get("synthetic_tokens_per_event", k.tokens_per_event)))
        mode = str(req.get("synthetic_mode", k.mode))
        return max(1, tokens), int(ttft * 1e6), int(itl * 1e6), per, mode

    def remember(self, rid: str, timing: Timing) -> None:
        self.timings[rid] = timing
        while len(self.timings) > MAX_TIMINGS:
            self.timings.popitem(last=False)

    async def stream(self, writer: asyncio.StreamWriter, req: dict, rid: str, recv_ns: int, keep: bool) -> None:
        tokens, ttft, itl, per, mode = self.knobs_for(req)
        timing = Timing(recv_ns=recv_ns, tokens_per_event=per, mode=mode)
        timing.deadlines_ns = [recv_ns + ttft + i * itl * per for i in range(-(-tokens // per))]
        self.remember(rid, timing)
        base = {"id": f"chatcmpl-{rid}", "object": "chat.completion.chunk", "created": self.created, "model": MODEL}
        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                f"transfer-encoding: chunked\r\nx-request-id: {rid}\r\n"
                f"connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
        role = sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})
        tail = sse({**base, "choices": [], "usage": usage(req, tokens)}) \
            if (req.get("stream_options") or {}).get("include_usage") else b""
        # Content frames are this JSON with the text spliced in (no json.dumps per event).
        frame = json.dumps({**base, "choices": [{"index": 0, "delta": {"content": ""}}]}, separators=(",", ":"))
        left, right = frame.split('""', 1)
        stream = Stream(self, writer, timing, (left, right), tokens, tail + sse("[DONE]"))
        if mode == "buffer":
            writer.write(head)  # a buffering proxy passes the headers on and holds the body
            stream.pending += role
        else:
            writer.write(head + chunk(role))
        timing.headers_ns = time.perf_counter_ns()
        stream.start()
        await stream.finished
        timing.done = True
        await writer.drain()

    async def complete(self, writer: asyncio.StreamWriter, req: dict, rid: str, recv_ns: int, keep: bool) -> None:
        """Non-streamed: the whole answer once the last token would have been sent."""
        tokens, ttft, itl, per, mode = self.knobs_for(req)
        timing = Timing(recv_ns=recv_ns, tokens_per_event=per, mode=mode)
        self.remember(rid, timing)
        deadline = recv_ns + ttft + (-(-tokens // per) - 1) * itl * per
        await asyncio.sleep(max(0.0, (deadline - time.perf_counter_ns()) / 1e9))
        timing.deadlines_ns.append(deadline)
        text = "".join(f" w{j}" for j in range(tokens))
        obj = {"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": self.created, "model": MODEL,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
               "usage": usage(req, tokens)}
        await self.respond(writer, 200, obj, rid, keep)
        timing.sends_ns.append(time.perf_counter_ns())
        timing.done = True


def usage(req: dict, tokens: int) -> dict:
    words = sum(len(str(m.get("content", "")).split()) for m in req.get("messages") or [] if isinstance(m, dict))
    return {"prompt_tokens": words, "completion_tokens": tokens, "total_tokens": words + tokens}


def jitter_stats(lateness: list[int]) -> dict:
    """|send - deadline| percentiles in microseconds (nearest-rank)."""
    if not lateness:
        return {"count": 0, "p50_us": None, "p99_us": None, "max_us": None, "late_p99_us": None}
    ab = sorted(abs(x) for x in lateness)

    def pct(values: list[int], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] / 1e3

    return {"count": len(ab), "p50_us": pct(ab, 0.5), "p99_us": pct(ab, 0.99), "max_us": ab[-1] / 1e3,
            "late_p99_us": pct(sorted(lateness), 0.99)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m wirecheck.load.synthetic_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=5.0)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--tokens-per-event", type=int, default=1)
    p.add_argument("--mode", choices=["normal", "buffer"], default="normal")
    p.add_argument("--buffer-bytes", type=int, default=16384)
    p.add_argument("--busy-poll", action="store_true", help="never idle: poll sockets and deadlines in a spin "
                                                          "(give the server its own CPU)")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    knobs = Knobs(args.ttft_ms, args.itl_ms, args.tokens, args.tokens_per_event, args.mode, args.buffer_bytes,
                  args.busy_poll)
    app = Server(knobs)
    if knobs.busy_poll:
        app.pacer.start()  # spin from the start, so even the first request is read at once
    server = await asyncio.start_server(app.handle, args.host, args.port, limit=1 << 20, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"synthetic server listening on http://{args.host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gc.freeze()  # long-lived startup objects leave the young generations: shorter GC pauses mid-stream
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
