"""The generation policy and the shortest completion of partial JSON (engine/policy.py, engine/jsonclose.py).

The strongest test walks each corpus schema's own grammar at random, token by token, and at every step asks the
cursor for the shortest completion: prefix + completion must be accepted by the grammar (llguidance) and valid
under the client's schema. So every forced close the decoder can make is one the grammar and the client accept.
"""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest

from wirecheck.fixtures.schemas import CORPUS
from wirecheck.reference_server.engine.grammar import compiler_for
from wirecheck.reference_server.engine.jsonclose import JsonCursor
from wirecheck.reference_server.engine.loader import load_model
from wirecheck.reference_server.engine.policy import STRING_CHARS, generation_schema

STEPS = 40  # tokens per random walk


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", device="cpu")


def _accepted(grammar, tokenizer, text: str) -> bool:
    matcher = grammar.matcher()
    return all(matcher.consume(t) for t in tokenizer.encode(text, add_special_tokens=False)) and matcher.accepting


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_completion_on_a_random_walk_is_accepted_and_valid(tiny, name: str) -> None:
    schema = CORPUS[name][0]
    grammar = compiler_for(tiny).json_schema(schema)
    rng = random.Random(name)
    matcher, raw, checked = grammar.matcher(), b"", 0
    for _ in range(STEPS):
        if matcher.stopped:
            break
        token = int(rng.choice(np.nonzero(matcher.mask())[0]))
        if token in tiny.eos_ids:
            break
        assert matcher.consume(token)
        raw += tiny.token_bytes[token]
        try:
            prefix = raw.decode()
        except UnicodeDecodeError:
            continue  # a character cut between tokens: the decoder completes those bytes (closure.py)
        cursor = JsonCursor(grammar.shape.content)
        cursor.feed(prefix)
        full = prefix + cursor.completion()
        assert _accepted(grammar, tiny.tokenizer, full), (prefix, full)
        jsonschema.validate(json.loads(full), schema)
        checked += 1
    assert checked >= 1


def test_the_shortest_completions_by_hand() -> None:
    schema = generation_schema(CORPUS["order-strict"][0])
    cases = {"": '{"order_id": 0, "items": [], "status": "pending"}',
             '{"order_id": 12, "items": [{"name": "Tea", "qu': 'antity": 1, "price": 0}], "status": "pending"}',
             '{"order_id": -': '0, "items": [], "status": "pending"}',  # the grammar takes -0 for integers
             '{"order_id": 3, "items": [], "status": "sh': 'ipped"}'}
    for prefix, rest in cases.items():
        cursor = JsonCursor(schema)
        cursor.feed(prefix)
        assert cursor.completion() == rest, prefix


def test_a_key_written_twice_is_reported() -> None:
    cursor = JsonCursor(generation_schema({"type": "object"}))
    assert not cursor.feed('{"unit": "c", ')
    assert cursor.feed('"unit"')


def test_the_policy_tightens_only_what_the_schema_leaves_open() -> None:
    plain = generation_schema({"type": "object", "properties": {"name": {"type": "string", "minLength": 40},
                                                                 "n": {"type": "integer", "minimum": 5},
                                                                 "x": {"type": "number", "maximum": 0.5,
                                                                       "minimum": 0.1}}})
    assert plain["additionalProperties"] is False
    assert plain["properties"]["name"]["maxLength"] == 40  # never below the schema's own lower bound
    assert plain["properties"]["n"] == {"type": "integer", "minimum": 5, "maximum": 5 + 999_999}
    assert "multipleOf" not in plain["properties"]["x"]  # too narrow a range for two decimals
    assert generation_schema({"type": "string"})["maxLength"] == STRING_CHARS
    needs_more = generation_schema({"type": "object", "properties": {"a": {}}, "required": ["a", "b"]})
    assert "additionalProperties" not in needs_more
    assert generation_schema({"type": "object", "properties": {}})["additionalProperties"] is False
    assert generation_schema({"enum": ["a", "bb"]}) == {"enum": ["a", "bb"]}
