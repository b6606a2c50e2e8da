"""The engine: one thread owns the model; the event loop talks to it through queues.

Generation never runs on the event loop. Every step the thread admits waiting requests (prefill, then
merge into the running batch), decodes one token for every row, and hands each request its new text via
`loop.call_soon_threadsafe`. A cancelled request (client gone) leaves the batch at the next step.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .batch import Batch, mergeable
from .choice import ChoiceOutput
from .closure import BudgetGuard
from .loader import LoadedModel, default_threads
from .sampling import RowSampler, choose, make_row, token_logprobs
from .types import ChoiceEvent, SamplingParams, Usage

if TYPE_CHECKING:
    from .media import Media, MediaAdapter

log = logging.getLogger("wirecheck.engine")


@dataclass
class _End:
    usage: Usage


@dataclass
class _Failure:
    error: BaseException


@dataclass
class Job:
    prompt: list[int]
    params: SamplingParams
    outputs: list[ChoiceOutput]
    samplers: list[RowSampler]
    send: Callable[[object], None]  # where the job's events go: the event loop's queue, or the engine's outbox
    cancelled: threading.Event = field(default_factory=threading.Event)
    media: list[tuple[int, Media]] = field(default_factory=list)  # (offset, media) over the prompt's placeholders

    def deliver(self, item: object) -> None:
        try:
            self.send(item)
        except RuntimeError:  # loop closed: nobody is listening any more
            self.cancelled.set()

    @property
    def usage(self) -> Usage:
        return Usage(len(self.prompt), sum(len(o.tokens) for o in self.outputs))


@dataclass
class EmbedJob:
    inputs: list[list[int]]
    done: Callable[[object], None]  # called (on the engine thread) with the vectors or the exception


class GenerationStream:
    """What a surface iterates: lists of ChoiceEvents, then `usage` is final."""

    def __init__(self, prompt_tokens: int, inbox: asyncio.Queue, cancel: Callable[[], None]) -> None:
        self._inbox = inbox
        self._cancel = cancel
        self.usage = Usage(prompt_tokens=prompt_tokens)

    def __aiter__(self) -> "GenerationStream":
        return self

    async def __anext__(self) -> list[ChoiceEvent]:
        item = await self._inbox.get()
        if isinstance(item, _End):
            self.usage = item.usage
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            raise item.error
        return item

    def cancel(self) -> None:
        self._cancel()


def nothing_to_generate(params: SamplingParams, prompt: list[int]) -> list[object]:
    """What a request with max_tokens 0 gets at once (Anthropic's cache pre-warm, completions' echo-only): every
    choice ends at its limit. Sampling would emit one token before the limit is checked."""
    return [[ChoiceEvent(index=c, finish_reason="length") for c in range(params.n)], _End(Usage(len(prompt), 0))]


class Engine:
    """The engine in this process: a thread owns the model (see the module docstring). `flush`, when given, is
    called after every step, so a host process can ship all of that step's events at once (process.py)."""

    def __init__(self, loaded: LoadedModel, max_rows: int = 64, flush: Callable[[], None] | None = None,
                 media: MediaAdapter | None = None) -> None:
        self.loaded = loaded
        self.media = media  # embeds the images and audio of chat prompts, when this model has an adapter
        self.max_rows = max_rows
        self._flush = flush
        self._inbox: queue.Queue = queue.Queue()
        self._waiting: deque[Job] = deque()
        self._batch: Batch | None = None
        self._admitting = 0  # jobs between the waiting queue and the batch (being prefilled)
        # Embedding requests in progress, each with its remaining batches: one batch per loop turn, between
        # decode steps.
        self._embedding: deque[tuple[EmbedJob, Iterator[list[list[float]]], list[list[float]]]] = deque()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wirecheck-engine", daemon=True)

    # -- event-loop side -------------------------------------------------------------------------------

    def start(self) -> None:
        default_threads(self.loaded)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._inbox.put(None)
        self._thread.join(timeout=10)

    @property
    def media_kinds(self) -> frozenset[str]:
        """The media this engine can put in front of its model ("image", "audio"), none without an adapter."""
        return self.media.kinds if self.media is not None else frozenset()

    def generate(self, prompt: list[int], params: SamplingParams,
                 media: list[tuple[int, Media]] | None = None) -> GenerationStream:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()
        if params.max_tokens == 0:
            for item in nothing_to_generate(params, prompt):
                inbox.put_nowait(item)
            return GenerationStream(len(prompt), inbox, lambda: None)
        job = self.job(prompt, params, lambda item: loop.call_soon_threadsafe(inbox.put_nowait, item), media)
        self.submit(job)
        return GenerationStream(len(prompt), inbox, job.cancelled.set)

    def job(self, prompt: list[int], params: SamplingParams, send: Callable[[object], None],
            media: list[tuple[int, Media]] | None = None) -> Job:
        """A job for `prompt` (and the media over its placeholders): its choices' outputs and samplers; its events
        go to `send`."""
        lm = self.loaded
        outputs = [ChoiceOutput(c, lm.token_bytes, frozenset(lm.eos_ids), params.max_tokens, params.stop,
                                params.min_tokens) for c in range(params.n)]
        samplers = [make_row(params, lm.eos_ids, c, lm.vocab_size, lm.device, self._guard(params))
                    for c in range(params.n)]
        return Job(prompt, params, outputs, samplers, send, media=list(media or []))

    def submit(self, item: Job | EmbedJob) -> None:
        """Queue a job (or an embedding request) for the engine thread; safe from any thread."""
        self._inbox.put(item)

    def _guard(self, params: SamplingParams) -> BudgetGuard | None:
        """The budget guard of one choice whose grammar yields JSON (closure.py)."""
        shape = getattr(params.grammar, "shape", None)
        if shape is None or not self.loaded.eos_ids:
            return None
        tokenizer = self.loaded.tokenizer
        return BudgetGuard(shape, params.max_tokens, lambda text: tokenizer.encode(text, add_special_tokens=False),
                           self.loaded.token_bytes, self.loaded.eos_ids[0])

    def load(self) -> dict[str, int]:
        """Sequences decoding now and requests waiting to start (read without locking: a snapshot)."""
        batch = self._batch
        running = (len(batch.rows) if batch else 0) + self._admitting
        return {"running": running, "waiting": len(self._waiting) + self._inbox.qsize()}

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(result: object) -> None:
            settle = future.set_exception if isinstance(result, BaseException) else future.set_result
            loop.call_soon_threadsafe(lambda: future.done() or settle(result))

        self._inbox.put(EmbedJob(inputs, done))
        return await future

    # -- engine thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._closing.is_set():
                self._admit(block=self._batch is None and not self._waiting and not self._embedding)
                if self._embedding:
                    self._embed_step()
                if self._batch is not None:
                    try:
                        self._decode()
                    except Exception as exc:
                        self._fail([row.job for row in self._batch.rows], exc)
                        self._batch = None
                if self._flush is not None:
                    self._flush()

    def _fail(self, jobs: list[Job], exc: Exception) -> None:
        log.exception("engine step failed")  # one bad step must not take the server down
        for job in {id(j): j for j in jobs}.values():
            job.cancelled.set()
            job.deliver(_Failure(exc))

    def _admit(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
        except queue.Empty:
            item = None
        while item is not None:
            if isinstance(item, EmbedJob):
                self._start_embedding(item)
            elif isinstance(item, Job):
                self._waiting.append(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                item = None
        # Everything that fits is prefilled in one forward pass: requests arriving together cost one model call.
        # (Holding a lone arrival back for company saved little and cost TTFT: measured, docs/performance.md.)
        ready: list[Job] = []
        active = len(self._batch.rows) if self._batch else 0
        while self._waiting:
            job = self._waiting[0]
            if (active or ready) and active + job.params.n > self.max_rows:
                break
            self._waiting.popleft()
            if job.cancelled.is_set():
                job.deliver(_End(job.usage))
                continue
            ready.append(job)
            active += job.params.n
        if not ready:
            return
        self._admitting += len(ready)
        try:
            self._prefill(ready)
        except Exception as exc:
            self._fail(ready, exc)
        finally:
            self._admitting -= len(ready)

    def _prefill(self, jobs: list[Job]) -> None:
        pad = self.loaded.tokenizer.pad_token_id
        pad = pad if pad is not None else self.loaded.eos_ids[0]
        media = [self._media_spans(j) for j in jobs]
        batch, logits = Batch.prefill_many(self.loaded.model, [(j.prompt, j, j.params.n) for j in jobs], pad, media)
        self._advance(batch, logits)
        if batch.rows:
            if self._batch is None:
                self._batch = batch
            elif mergeable(self._batch.cache) and mergeable(batch.cache):
                self._batch.merge(batch)
            else:  # e.g. sliding-window caches: finish this job on its own first
                self._run_alone(batch)

    def _media_spans(self, job: Job) -> list[tuple[int, torch.Tensor]]:
        """The job's media as (offset, vectors) spans. Embedded per job at prefill, never cached by prompt ids:
        every image's placeholders are the same ids."""
        if not job.media:
            return []
        if self.media is None:
            raise RuntimeError("this engine has no media adapter: a prompt with media cannot be prefilled")
        return [(offset, self.media.embed(item)) for offset, item in job.media]

    def _run_alone(self, batch: Batch) -> None:
        while batch.rows:
            self._advance(batch, batch.step(self.loaded.model))

    def _decode(self) -> None:
        assert self._batch is not None
        self._advance(self._batch, self._batch.step(self.loaded.model))
        if not self._batch.rows:
            self._batch = None

    def _advance(self, batch: Batch, logits: torch.Tensor) -> None:
        """Sample one token per row, release text, deliver events, and drop finished rows."""
        samplers = [row.job.samplers[row.choice] for row in batch.rows]
        tokens = choose(logits, samplers)
        logprobs = token_logprobs(logits, samplers, tokens, self.loaded.token_bytes)
        events: dict[int, tuple[Job, list[ChoiceEvent]]] = {}
        keep: list[int] = []
        failed: set[int] = set()
        for i, (row, token, lp) in enumerate(zip(batch.rows, tokens, logprobs)):
            job = row.job
            output = job.outputs[row.choice]
            if job.cancelled.is_set():
                continue
            failure = samplers[i].failure
            if failure is not None:  # this request alone fails; its batch-mates go on
                log.error("request failed in decoding: %r", failure)
                job.cancelled.set()
                job.deliver(_Failure(failure))
                failed.add(id(job))
                continue
            event = output.push(token, lp)
            row.next_token = token
            if event.text or event.finish_reason or event.logprobs:
                events.setdefault(id(job), (job, []))[1].append(event)
            if not output.done:
                keep.append(i)
        for key, (job, job_events) in events.items():
            if key not in failed:
                job.deliver(job_events)
        finished = {id(row.job): row.job for row in batch.rows}
        batch.keep(keep)
        for row in batch.rows:
            finished.pop(id(row.job), None)
        for job in finished.values():
            job.deliver(_End(job.usage))

    def _start_embedding(self, job: EmbedJob) -> None:
        from .embeddings import pooled_batches

        batches = pooled_batches(self.loaded.model, job.inputs, self.loaded.tokenizer.pad_token_id)
        self._embedding.append((job, batches, []))

    def _embed_step(self) -> None:
        """One batch of the oldest embedding request; its vectors are delivered after its last batch."""
        job, batches, vectors = self._embedding[0]
        try:
            part = next(batches, None)
        except Exception as exc:
            log.exception("embedding failed")
            self._embedding.popleft()
            job.done(exc)
            return
        if part is None:
            self._embedding.popleft()
            job.done(vectors)
        else:
            vectors.extend(part)
