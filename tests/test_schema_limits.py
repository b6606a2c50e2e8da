"""The schema size limits and $ref-cycle refusal (engine/schema_limits.py), and what the compiler does with them."""

from __future__ import annotations

import pytest

from wirecheck.reference_server.engine.grammar import GrammarCompiler, GrammarError
from wirecheck.reference_server.engine.loader import load_model
from wirecheck.reference_server.engine.schema_limits import (
    MAX_ENUM_VALUES,
    MAX_LARGE_ENUM_CHARS,
    MAX_NAME_CHARS,
    MAX_PROPERTIES,
    schema_limit_error,
)


def obj(n: int, prefix: str = "p") -> dict:
    return {"type": "object", "properties": {f"{prefix}{i}": {"type": "string"} for i in range(n)}}


def test_schemas_within_the_limits_pass() -> None:
    assert schema_limit_error(obj(MAX_PROPERTIES)) is None
    assert schema_limit_error({"enum": list(range(MAX_ENUM_VALUES))}) is None
    assert schema_limit_error({"enum": ["x" * 50] * 250}) is None  # 250 values: the char quota does not apply
    tree = {"$defs": {"n": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}},
            "$ref": "#/$defs/n"}
    assert schema_limit_error(tree) is None  # recursion through a real schema is fine
    chain = {"$defs": {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(3000)} | {"d3000": {"type": "string"}},
             "$ref": "#/$defs/d0"}
    assert schema_limit_error(chain) is None


@pytest.mark.parametrize("schema, words", [
    (obj(MAX_PROPERTIES + 1), "5001 object properties"),
    ({"anyOf": [obj(3000, "a"), obj(3000, "b")]}, "6000 object properties"),
    ({"type": "array", "items": {"enum": list(range(MAX_ENUM_VALUES + 1))}}, "1001 enum values"),
    ({"enum": ["v" * 60 + str(i) for i in range(251)]}, f"at most {MAX_LARGE_ENUM_CHARS}"),
    ({"type": "object", "properties": {"k" * (MAX_NAME_CHARS + 1): {"type": "string"}}}, "characters"),
    ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a", "description": "x"}}, "$ref": "#/$defs/a"},
     "#/$defs/a -> #/$defs/b"),
    ({"type": "object", "properties": {"x": {"$ref": "#/properties/x"}}}, "comes back to itself"),
])
def test_past_the_limits_is_named(schema: dict, words: str) -> None:
    error = schema_limit_error(schema)
    assert error is not None and words in error, error


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    lm = load_model("tiny", device="cpu")
    return GrammarCompiler(lm.tokenizer, lm.vocab_size, lm.eos_ids, cache_bytes=64 * 1024)


def test_the_compiler_refuses_before_compiling(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="1001 enum values"):
        compiler.json_schema({"enum": list(range(1001))})


def test_a_schema_without_a_finite_value_still_decodes(compiler: GrammarCompiler) -> None:
    """Every x needs an x: not a pure-ref cycle (the static check passes it) and no finite value exists. llguidance
    compiles it and its masks offer tokens it then refuses to consume; the matcher must then be stopped, so that
    the sampler ends the row (finish_reason stop) instead of drawing from an empty row."""
    endless = {"$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}, "required": ["x"],
                               "additionalProperties": False}}, "$ref": "#/$defs/a"}
    assert schema_limit_error(endless) is None
    matcher = compiler.json_schema(endless).matcher()
    for _ in range(20):
        allowed = matcher.mask()
        if not matcher.consume(int(allowed.nonzero()[0][0])):
            assert matcher.stopped
            return


def test_a_pure_ref_cycle_is_refused_before_compiling(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="comes back to itself"):
        compiler.json_schema({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})


def test_the_cache_is_bounded_by_grammar_size(compiler: GrammarCompiler) -> None:
    for i in range(40):
        compiler.json_schema(dict(obj(200), title=f"v{i}"))
        assert compiler.cached_bytes <= 64 * 1024
    assert 0 < len(compiler) < 40
    big = dict(obj(4000), title="big")
    compiler.json_schema(big)  # larger than the whole cache: compiled, served, not kept
    assert compiler.cached_bytes <= 64 * 1024
