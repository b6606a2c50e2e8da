"""The engine in its own process, so generation and HTTP run in parallel instead of taking turns on one GIL.

The server process (`RemoteEngine`) keeps what is cheap and per request: templating, validation, grammar
checks, SSE encoding. The engine process (`engine_main`) holds the weights and runs the step loop of worker.py
unchanged. They talk over two pipes:

* requests, server -> engine: `("generate", id, prompt, params, grammar recipe, media)` (media: (offset,
  media.Media) pairs, numpy arrays that pickle as bytes), `("cancel", id)`,
  `("embed", id, inputs)`, `("close",)`;
* events, engine -> server: one `("step", [(id, item), ...], load)` message per engine step, carrying every
  row's new text at once (so the event loop wakes once a step, not once a token per stream), plus
  `("embedded", id, result)` and `("ready", info)` / `("failed", message)` at start.

Cancellation on client disconnect, /health's counts, seeds and the budget guard behave as in-process: the
jobs, samplers and guards are built in the engine process by the same code.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import threading
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from .loader import LoadedModel, load_model
from .types import SamplingParams
from .worker import Engine, EmbedJob, GenerationStream, Job, _End, _Failure, nothing_to_generate

log = logging.getLogger("wirecheck.engine")

START_TIMEOUT = 600.0  # seconds for the engine process to load its model


# ------------------------------------------------------------------------------------------ engine process


def engine_main(requests: Connection, events: Connection, model: dict[str, Any], max_rows: int) -> None:
    """The engine process: load the model (and the media adapter, when given one), then serve requests until told
    to close (or the server is gone)."""
    logging.basicConfig(level=model.pop("log_level", "WARNING"))
    adapter_dir = model.pop("media", None)
    try:
        lm = load_model(**model)
        adapter = None
        if adapter_dir is not None:
            from .media import MediaAdapter

            adapter = MediaAdapter(adapter_dir, lm.device, lm.dtype)
    except Exception as exc:  # noqa: BLE001 - reported to the server, which fails its startup with it
        events.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    outbox: list[tuple[int, object]] = []
    lock = threading.Lock()
    engine: Engine

    def flush() -> None:
        with lock:
            if not outbox:
                return
            batch = outbox[:]
            outbox.clear()
        events.send(("step", batch, engine.load()))

    engine = Engine(lm, max_rows=max_rows, flush=flush, media=adapter)
    jobs: dict[int, Job] = {}
    engine.start()
    events.send(("ready", {"vocab": lm.vocab_size, "eos_ids": lm.eos_ids, "device": str(lm.device),
                           "media": sorted(engine.media_kinds)}))
    try:
        _serve(requests, events, engine, jobs, outbox, lock)
    finally:
        engine.close()


def _serve(requests: Connection, events: Connection, engine: Engine, jobs: dict[int, Job],
           outbox: list[tuple[int, object]], lock: threading.Lock) -> None:
    from .grammar import compiler_for

    while True:
        try:
            message = requests.recv()
        except (EOFError, OSError):  # the server process is gone
            return
        kind = message[0]
        if kind == "generate":
            _, job_id, prompt, params, recipe, media = message
            if recipe is not None:
                method, args = recipe
                params = replace(params, grammar=getattr(compiler_for(engine.loaded), method)(**args))

            def send(item: object, job_id: int = job_id) -> None:
                if isinstance(item, _End):
                    jobs.pop(job_id, None)
                if isinstance(item, _Failure):
                    item = _Failure(RuntimeError(str(item.error)))  # the exception class may not cross
                with lock:
                    outbox.append((job_id, item))

            job = jobs[job_id] = engine.job(prompt, params, send, media)
            engine.submit(job)
        elif kind == "cancel":
            job = jobs.get(message[1])
            if job is not None:
                job.cancelled.set()
        elif kind == "embed":
            _, job_id, inputs = message

            def done(result: object, job_id: int = job_id) -> None:
                if isinstance(result, BaseException):
                    result = RuntimeError(str(result))
                events.send(("embedded", job_id, result))

            engine.submit(EmbedJob(inputs, done))
        elif kind == "close":
            return


# ------------------------------------------------------------------------------------------ server process


class RemoteEngine:
    """`Engine`'s interface in the server process, backed by the engine process."""

    def __init__(self, loaded: LoadedModel, model: dict[str, Any], max_rows: int = 64) -> None:
        self.loaded = loaded  # tokenizer and config only: the weights live in the engine process
        self._model = model
        self._max_rows = max_rows
        self._ids = itertools.count(1)
        self._inboxes: dict[int, asyncio.Queue] = {}
        self._embeds: dict[int, asyncio.Future] = {}
        self._load = {"running": 0, "waiting": 0}
        self._sent = 0  # generate requests sent since the last load snapshot
        self._process: multiprocessing.process.BaseProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.media_kinds: frozenset[str] = frozenset()  # what the engine process's media adapter embeds

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # CUDA cannot be forked; spawn suits every device
        requests_out, requests_in = context.Pipe(duplex=False)
        events_out, events_in = context.Pipe(duplex=False)
        self._process = context.Process(target=engine_main, name="wirecheck-engine", daemon=True,
                                        args=(requests_out, events_in, self._model, self._max_rows))
        self._process.start()
        requests_out.close()
        events_in.close()
        self._requests, self._events = requests_in, events_out
        if not self._events.poll(START_TIMEOUT):
            raise RuntimeError(f"the engine process did not load its model in {START_TIMEOUT:.0f} s")
        kind, info = self._events.recv()
        if kind != "ready":
            raise RuntimeError(f"the engine process failed to start: {info}")
        if info["vocab"] != self.loaded.vocab_size or tuple(info["eos_ids"]) != tuple(self.loaded.eos_ids):
            raise RuntimeError(f"the engine process loaded another model than the server's: {info}")
        self.media_kinds = frozenset(info.get("media", ()))
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._events.fileno(), self._on_events)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._events.fileno())
        if self._process is not None and self._process.is_alive():
            try:
                self._requests.send(("close",))
            except OSError:
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _check_alive(self) -> None:
        if not self.alive:
            from ..errors import APIError

            raise APIError(503, "The engine process has exited; restart the server.", type="server_error",
                           code="engine_unavailable")

    def generate(self, prompt: list[int], params: SamplingParams,
                 media: list[tuple[int, Any]] | None = None) -> GenerationStream:
        self._check_alive()
        inbox: asyncio.Queue = asyncio.Queue()
        if params.max_tokens == 0:
            for item in nothing_to_generate(params, prompt):
                inbox.put_nowait(item)
            return GenerationStream(len(prompt), inbox, lambda: None)
        job_id = next(self._ids)
        self._inboxes[job_id] = inbox
        grammar = params.grammar
        recipe = grammar.recipe if grammar is not None else None
        self._sent += 1
        self._requests.send(("generate", job_id, prompt, replace(params, grammar=None), recipe, list(media or [])))
        return GenerationStream(len(prompt), inbox, lambda: self._cancel(job_id))

    def _cancel(self, job_id: int) -> None:
        if job_id in self._inboxes:
            self._requests.send(("cancel", job_id))

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        self._check_alive()
        job_id = next(self._ids)
        future = self._embeds[job_id] = asyncio.get_running_loop().create_future()
        self._requests.send(("embed", job_id, inputs))
        return await future

    def load(self) -> dict[str, int]:
        """Running and waiting sequences as of the engine's last step, plus requests sent since."""
        return {"running": self._load["running"], "waiting": self._load["waiting"] + self._sent}

    def _on_events(self) -> None:
        """Drain what the engine process sent: a step's events, routed to their streams' queues."""
        try:
            while self._events.poll():
                self._dispatch(self._events.recv())
        except (EOFError, OSError):
            self._loop.remove_reader(self._events.fileno())
            self._fail_all(RuntimeError("the engine process exited"))

    def _dispatch(self, message: tuple) -> None:
        kind = message[0]
        if kind == "step":
            _, batch, load = message
            self._load, self._sent = load, 0
            for job_id, item in batch:
                inbox = self._inboxes.get(job_id)
                if inbox is None:
                    continue
                if isinstance(item, (_End, _Failure)):
                    del self._inboxes[job_id]
                inbox.put_nowait(item)
        elif kind == "embedded":
            _, job_id, result = message
            future = self._embeds.pop(job_id, None)
            if future is not None and not future.done():
                (future.set_exception if isinstance(result, BaseException) else future.set_result)(result)

    def _fail_all(self, error: BaseException) -> None:
        for inbox in self._inboxes.values():
            inbox.put_nowait(_Failure(error))
        self._inboxes.clear()
        for future in self._embeds.values():
            if not future.done():
                future.set_exception(error)
        self._embeds.clear()
