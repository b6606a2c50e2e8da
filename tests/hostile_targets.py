"""Hostile targets: an HTTP server that accepts every request on every path and never completes an answer.

Modes (issue 19):

* ``silent``: reads the request, never answers;
* ``headers-only``: sends ``200 OK`` and JSON headers (no Content-Length, no chunking), then nothing;
* ``drip``: sends ``200 OK`` and event-stream headers, then one byte of an SSE stream every ``interval`` seconds;
* ``endless``: sends ``200 OK`` and event-stream headers, then SSE chunks as fast as the socket takes them;
* ``drip-head``: drips the whole response from the status line's first byte, one every ``interval`` seconds
  (no response exists until the headers are in, so nothing that acts on a response can end the wait).

Raw asyncio sockets, so nothing in an HTTP framework buffers, times out or finishes what the mode sends. The server
runs on its own event loop in a daemon thread of the process that starts it (``with HostileServer(mode) as url``),
or alone: ``python tests/hostile_targets.py MODE [INTERVAL]`` prints its URL and serves until killed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading

MODES = ("silent", "headers-only", "drip", "endless", "drip-head")
CHUNK = (b'data: {"id":"chatcmpl-hostile","object":"chat.completion.chunk","created":1,"model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n')
HEAD = "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncache-control: no-cache\r\n\r\n"


class HostileServer:
    def __init__(self, mode: str, interval: float = 5.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.interval = mode, interval
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"hostile-{mode}", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile server did not start")
        return self.url

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        # Nothing here ever ends on its own: cancel the open connections' handlers (from 3.12 on, wait_closed
        # waits for every connection to close).
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
            if self.mode == "silent":
                await reader.read()  # until the client gives up and closes
                return
            kind = "application/json" if self.mode == "headers-only" else "text/event-stream"
            head = HEAD.format(kind).encode()
            if self.mode != "drip-head":
                writer.write(head)
                await writer.drain()
                head = b""
            if self.mode == "headers-only":
                await reader.read()
            elif self.mode == "endless":
                block = CHUNK * 512  # about 80 KB a write
                while True:
                    writer.write(block)
                    await writer.drain()
            else:  # drip, drip-head
                for byte in itertools.chain(head, itertools.cycle(CHUNK)):
                    await asyncio.sleep(self.interval)
                    writer.write(bytes([byte]))
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> None:
    """The request line, headers and a Content-Length body (read so the client is never blocked sending it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    if length:
        await reader.readexactly(length)


if __name__ == "__main__":
    with HostileServer(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 5.0) as base:
        print(base, flush=True)
        threading.Event().wait()
