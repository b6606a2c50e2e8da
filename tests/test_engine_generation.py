"""The engine with the real tiny model, no HTTP: batching, seeds, n, cancellation, logprobs, embeddings."""

from __future__ import annotations

import asyncio

import pytest

from wirecheck.reference_server.engine.embeddings import shorten
from wirecheck.reference_server.engine.loader import load_model
from wirecheck.reference_server.engine.types import SamplingParams
from wirecheck.reference_server.engine.worker import Engine


@pytest.fixture(scope="module")
def engine():
    eng = Engine(load_model("tiny", device="cpu"))
    eng.start()
    yield eng
    eng.close()


def prompt(engine, text: str) -> list[int]:
    return engine.loaded.tokenizer.encode(text, add_special_tokens=False)


async def collect(engine, ids, params):
    stream = engine.generate(ids, params)
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    logprobs: dict[int, list] = {}
    async for batch in stream:
        for e in batch:
            texts[e.index] = texts.get(e.index, "") + e.text
            logprobs.setdefault(e.index, []).extend(e.logprobs)
            if e.finish_reason:
                assert e.index not in finish, "one finish per choice"
                finish[e.index] = e.finish_reason
    return texts, finish, stream.usage, logprobs


def run(coro):
    return asyncio.run(coro)


def test_batched_greedy_equals_solo(engine):
    a, b = prompt(engine, "The quick brown fox"), prompt(engine, "Once upon a time there was a very long prompt")
    greedy = SamplingParams(max_tokens=24, temperature=0)

    async def both():
        return await asyncio.gather(collect(engine, a, greedy), collect(engine, b, greedy))

    solo_a, solo_b = run(collect(engine, a, greedy)), run(collect(engine, b, greedy))
    together_a, together_b = run(both())
    assert together_a[0] == solo_a[0] and together_b[0] == solo_b[0]


def test_seed_reproducible_and_choices_distinct(engine):
    ids = prompt(engine, "Tell me something")
    params = SamplingParams(max_tokens=20, temperature=1.2, seed=1234, n=4)
    first, second = run(collect(engine, ids, params)), run(collect(engine, ids, params))
    assert first[0] == second[0]
    assert len(set(first[0].values())) > 1, "n choices with one seed must not be copies"
    other = run(collect(engine, ids, SamplingParams(max_tokens=20, temperature=1.2, seed=99, n=4)))
    assert other[0] != first[0]


def test_usage_counts_every_sampled_token(engine):
    ids = prompt(engine, "count")
    texts, finish, usage, _ = run(collect(engine, ids, SamplingParams(max_tokens=7, temperature=0, n=2)))
    assert usage.prompt_tokens == len(ids)
    assert 2 <= usage.completion_tokens <= 14 and set(finish) == {0, 1}


def test_min_and_max_tokens(engine):
    ids = prompt(engine, "Hi")
    _, finish, usage, _ = run(collect(engine, ids, SamplingParams(max_tokens=5, min_tokens=5, temperature=0)))
    assert usage.completion_tokens == 5 and finish == {0: "length"}


def test_logprobs_shape(engine):
    ids = prompt(engine, "Echo: blue sky")
    texts, _, _, lps = run(collect(engine, ids, SamplingParams(max_tokens=8, temperature=0, logprobs=True,
                                                               top_logprobs=5)))
    entries = lps[0]
    assert entries and all(len(e.top) == 5 for e in entries)
    assert all(e.top[0].token == e.token and e.logprob <= 0 for e in entries)
    assert b"".join(bytes(e.bytes) for e in entries).decode() == texts[0]


def test_cancel_stops_generation(engine):
    async def go():
        stream = engine.generate(prompt(engine, "x"), SamplingParams(max_tokens=1500, temperature=1.0, seed=1))
        seen = 0
        async for _ in stream:
            seen += 1
            if seen == 3:
                stream.cancel()
                break
        await asyncio.sleep(0.2)
        batch = engine._batch  # the cancelled row must have left the running batch
        assert batch is None or all(row.job is not stream._job for row in batch.rows)
        # ...and the engine goes on serving others.
        return await collect(engine, prompt(engine, "y"), SamplingParams(max_tokens=4, temperature=0))

    _, finish, _, _ = run(go())
    assert finish[0] in ("stop", "length")


def test_embeddings_unit_norm_and_padding_invariant(engine):
    a, b = prompt(engine, "hello"), prompt(engine, "a much longer sentence about embeddings and padding")

    async def go():
        return await engine.embed([a]), await engine.embed([a, b])

    alone, together = run(go())
    assert alone[0] == pytest.approx(together[0], abs=1e-5)
    assert sum(x * x for x in together[1]) == pytest.approx(1.0, abs=1e-5)
    short = shorten(together[1], 8)
    assert len(short) == 8 and sum(x * x for x in short) == pytest.approx(1.0, abs=1e-5)


class _BrokenMatcher:
    """A grammar matcher that fails on its third step (what a bug or a hostile schema could do)."""

    def __init__(self, vocab: int) -> None:
        self.vocab, self.steps = vocab, 0
        self.accepting, self.stopped, self.error = False, False, ""

    def mask(self, out=None):
        import numpy as np

        self.steps += 1
        if self.steps == 3:
            raise RuntimeError("grammar exploded")
        return np.ones(self.vocab, dtype=np.bool_)

    def consume(self, token_id: int) -> bool:
        return True


class _BrokenGrammar:
    shape = None
    recipe = None

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def matcher(self) -> _BrokenMatcher:
        return _BrokenMatcher(self.vocab)


def test_a_failing_row_fails_its_request_alone(engine):
    """One request whose decoding raises must not end the requests batched with it."""
    good = prompt(engine, "The quick brown fox")
    greedy = SamplingParams(max_tokens=24, temperature=0)
    broken = SamplingParams(max_tokens=24, temperature=1.0, grammar=_BrokenGrammar(engine.loaded.vocab_size))
    solo = run(collect(engine, good, greedy))

    async def both():
        return await asyncio.gather(collect(engine, good, greedy), collect(engine, good, broken),
                                    return_exceptions=True)

    kept, failed = run(both())
    assert isinstance(failed, Exception) and "grammar exploded" in str(failed)
    assert not isinstance(kept, Exception), kept
    assert kept[0] == solo[0] and kept[1] == solo[1]


def test_embeddings_interleave_with_decoding(engine):
    """A request of many inputs is embedded a batch per engine turn, between decode steps: both finish, and the
    vectors are those of one uninterrupted pass."""
    from wirecheck.reference_server.engine.embeddings import pooled_batches

    inputs = [prompt(engine, f"sentence number {i}") for i in range(70)]  # three batches of 32
    greedy = SamplingParams(max_tokens=24, temperature=0)
    good = prompt(engine, "The quick brown fox")
    solo = run(collect(engine, good, greedy))

    async def both():
        return await asyncio.gather(collect(engine, good, greedy), engine.embed(inputs))

    generated, vectors = run(both())
    assert generated[0] == solo[0]
    expected = [v for part in pooled_batches(engine.loaded.model, inputs, engine.loaded.tokenizer.pad_token_id)
                for v in part]
    assert len(vectors) == 70
    assert all(abs(a - b) < 1e-5 for v, w in zip(vectors, expected) for a, b in zip(v, w))
