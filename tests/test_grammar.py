"""Constrained decoding with llguidance on the tiny model, driven through the engine (no HTTP)."""

from __future__ import annotations

import asyncio
import json
import re

import jsonschema
import pytest
import torch

from wirecheck.reference_server.engine.grammar import GrammarError, compiler_for, tool_call_schema
from wirecheck.reference_server.engine.loader import load_model
from wirecheck.reference_server.engine.types import SamplingParams
from wirecheck.reference_server.engine.worker import Engine

SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"enum": ["red", "green", "blue"]},
        "count": {"type": "integer", "minimum": -3, "maximum": 42},
        "label": {"type": "string", "maxLength": 8},
        "ok": {"type": "boolean"},
    },
    "required": ["colour", "count", "label", "ok"],
    "additionalProperties": False,
}
STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?$)')  # a string literal, or an unterminated one at the end


@pytest.fixture(scope="module")
def engine():
    eng = Engine(load_model("tiny", device="cpu"))
    eng.start()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def compiler(engine):
    return compiler_for(engine.loaded)


async def _collect(engine, ids, params):
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    async for batch in engine.generate(ids, params):
        for e in batch:
            texts[e.index] = texts.get(e.index, "") + e.text
            if e.finish_reason:
                finish[e.index] = e.finish_reason
    return [texts.get(i, "") for i in range(params.n)], [finish[i] for i in range(params.n)]


def generate(engine, prompt: str, **kw) -> tuple[list[str], list[str]]:
    ids = engine.loaded.tokenizer.encode(prompt, add_special_tokens=False)
    return asyncio.run(_collect(engine, ids, SamplingParams(**kw)))


def assert_compact(text: str) -> None:
    outside = STRING.sub('""', text)
    # json.dumps' separators (", " and ": ") and no other whitespace
    assert not re.search(r"\s", re.sub(r"([,:]) ", r"\1", outside)), f"whitespace outside strings: {text!r}"


def sampled(engine, grammar, prompt="Reply in JSON:", max_tokens=160):
    """Greedy plus several seeded temperature-1 choices, all under `grammar`."""
    outs = []
    texts, finish = generate(engine, prompt, max_tokens=max_tokens, temperature=0, grammar=grammar)
    outs += zip(texts, finish)
    for seed in (1, 7, 123):
        texts, finish = generate(engine, prompt, max_tokens=max_tokens, temperature=1.0, seed=seed, n=3,
                                 grammar=grammar)
        outs += zip(texts, finish)
    return outs


def test_schema_outputs_are_valid_and_compact(engine, compiler):
    grammar = compiler.json_schema(SCHEMA)
    outs = sampled(engine, grammar)
    assert len(outs) == 10
    for text, finish in outs:
        # Every field is bounded, so the object always closes well inside max_tokens, and EOS is then forced.
        assert finish == "stop", (text, finish)
        value = json.loads(text)
        jsonschema.validate(value, SCHEMA)
        assert_compact(text)
        assert len(value["label"]) <= 8


def test_concurrent_constrained_and_free_rows(engine, compiler):
    grammar = compiler.json_schema(SCHEMA)
    ids = engine.loaded.tokenizer.encode("Hello", add_special_tokens=False)
    free = SamplingParams(max_tokens=20, temperature=0)

    async def both():
        return await asyncio.gather(
            _collect(engine, ids, SamplingParams(max_tokens=160, temperature=1.0, seed=5, n=2, grammar=grammar)),
            _collect(engine, ids, free),
        )

    solo_free = asyncio.run(_collect(engine, ids, free))
    (constrained, _), together_free = asyncio.run(both())
    for text in constrained:
        jsonschema.validate(json.loads(text), SCHEMA)
    assert together_free == solo_free  # an unconstrained row is untouched by its constrained neighbours


def test_json_object_mode(engine, compiler):
    for text, finish in sampled(engine, compiler.json_object(), max_tokens=48):
        assert text.startswith("{")
        assert_compact(text)
        if finish == "stop":
            assert isinstance(json.loads(text), dict)


def test_tool_call_grammar(engine, compiler):
    params = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 6}, "days": {"type": "integer", "minimum": 1,
                                                                            "maximum": 7}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    grammar = compiler.tool_call("get_weather", params)
    for text, finish in sampled(engine, grammar, prompt="What is the weather?", max_tokens=120):
        assert finish == "stop", (text, finish)
        match = re.fullmatch(r"<tool_call>\n(.*)\n</tool_call>", text, re.S)
        assert match, text
        call = json.loads(match.group(1))
        jsonschema.validate(call, tool_call_schema("get_weather", params))
        assert call["name"] == "get_weather"
        assert_compact(match.group(1))


@pytest.mark.parametrize("schema", [
    {"type": "nonsense"},
    {"type": "string", "format": "no-such-format"},
    {"type": "string", "pattern": "(?<=a)b"},
])
def test_invalid_schema_raises(compiler, schema):
    with pytest.raises(GrammarError) as info:
        compiler.json_schema(schema)
    assert str(info.value)


class _Owner:
    def __init__(self, compiler) -> None:
        self._grammar_compiler = compiler


def test_cache_returns_same_compiled_grammar(compiler):
    first = compiler.json_schema(SCHEMA)
    reordered = json.loads(json.dumps(SCHEMA, sort_keys=True))  # same schema, different key order
    assert compiler.json_schema(reordered) is first
    assert compiler.json_object() is compiler.json_object()
    assert compiler_for(_Owner(compiler)) is compiler  # kept on the model object


def test_matcher_interface(engine, compiler):
    grammar = compiler.json_schema({"type": "object", "properties": {"a": {"type": "integer", "minimum": 0,
                                                                          "maximum": 9}},
                                    "required": ["a"], "additionalProperties": False})
    matcher = grammar.matcher()
    vocab = engine.loaded.vocab_size
    out = torch.zeros(vocab, dtype=torch.bool)
    matcher.mask(out)
    allowed = matcher.mask()
    assert out.numpy().tolist() == allowed.tolist()
    assert allowed.shape == (vocab,) and allowed.dtype == bool and allowed.sum() >= 1
    assert not matcher.accepting and not matcher.stopped
    for token in engine.loaded.tokenizer.encode('{"a": 5}', add_special_tokens=False):
        assert matcher.mask()[token]
        assert matcher.consume(token)
    assert matcher.accepting and matcher.stopped
    assert set(matcher.mask().nonzero()[0]) <= set(engine.loaded.eos_ids)
    assert not grammar.matcher().accepting  # each matcher starts fresh
