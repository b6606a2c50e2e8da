"""Running a generation for a surface: SSE responses, disconnect handling, mid-stream errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from wirecheck.spec import sse
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..engine.types import ChoiceEvent
from ..engine.worker import GenerationStream
from ..errors import APIError, internal

log = logging.getLogger("wirecheck.server")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream; charset=utf-8", headers=SSE_HEADERS)


def error_frame(exc: BaseException) -> bytes:
    """Once headers are sent the status is 200: errors travel in-band, where the openai SDK raises them."""
    error = exc if isinstance(exc, APIError) else internal()
    return sse.encode_json(error.body())


async def tagged_events(streams: list[GenerationStream]) -> AsyncIterator[tuple[int, list[ChoiceEvent]]]:
    """Interleave several generations as they produce (completions with many prompts), tagging each batch
    with the position of the stream it came from."""
    if len(streams) == 1:
        async for batch in streams[0]:
            yield 0, batch
        return
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(k: int, stream: GenerationStream) -> None:
        try:
            async for batch in stream:
                await queue.put((k, batch))
        except Exception as exc:  # re-raised to the consumer below
            await queue.put(exc)
        finally:
            await queue.put(done)

    tasks = [asyncio.create_task(pump(k, s)) for k, s in enumerate(streams)]
    try:
        remaining = len(streams)
        while remaining:
            item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()


def cancel_all(streams: list[GenerationStream]) -> None:
    for stream in streams:
        stream.cancel()


async def unless_disconnected(request: Request, work: Awaitable[Any], streams: list[GenerationStream]) -> Any:
    """Race a non-streaming generation against the client hanging up; a gone client cancels the work."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        cancel_all(streams)
        task.cancel()
        raise asyncio.CancelledError("client disconnected")
    finally:
        watcher.cancel()


def openai_error_frames(exc: BaseException) -> list[bytes]:
    return [error_frame(exc), sse.DONE]


def guarded_stream(streams: list[GenerationStream], frames: Callable[[], AsyncIterator[bytes]],
                   error_frames: Callable[[BaseException], list[bytes]] = openai_error_frames) -> AsyncIterator[bytes]:
    """Ends every stream properly: an engine failure becomes the surface's error frames; a hang-up cancels
    generation."""

    async def run() -> AsyncIterator[bytes]:
        try:
            async for frame in frames():
                yield frame
        except (asyncio.CancelledError, GeneratorExit):
            cancel_all(streams)
            raise
        except Exception as exc:
            log.exception("generation failed mid-stream")
            cancel_all(streams)
            for frame in error_frames(exc):
                yield frame
        finally:
            cancel_all(streams)

    return run()
