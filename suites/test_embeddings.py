"""Embeddings (/v1/embeddings): shape, base64 encoding, order, dimensions and input forms."""

from __future__ import annotations

from typing import Any

import pytest

from .expect import expect_no_problems, expect_object, skip_if_refused
from .judge import decode_base64_floats, max_abs_diff, nearest, schema_problems
from .registry import check, fail
from .wire import Exchange

INPUTS = ["The cat sat on the mat.", "Quarterly revenue grew by four percent.", "¿Dónde está la biblioteca? 🌍"]
TOLERANCE = 1e-5  # float32 rounding of the float response, as the spec's base64 form carries



def embed(wire, target, input: Any = None, **fields: Any) -> Exchange:
    return wire.post("embeddings", {"model": target.embedding_model, "input": INPUTS if input is None else input,
                                    **fields})


def vectors(body: dict[str, Any], ex: Exchange) -> list[Any]:
    data = body.get("data")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        fail(f"data is {str(data)[:120]}, not a list of objects", ex.evidence())
    return [d.get("embedding") for d in data]


def float_vectors(body: dict[str, Any], ex: Exchange) -> list[list[float]]:
    out = vectors(body, ex)
    for i, v in enumerate(out):
        if not isinstance(v, list) or not all(isinstance(x, (int, float)) for x in v):
            fail(f"data[{i}].embedding is {str(v)[:80]}, not a list of floats (encoding_format float)",
                 ex.evidence())
    return out


@pytest.fixture(scope="module")
def floats(wire, target) -> tuple[Exchange, dict[str, Any]]:
    ex = embed(wire, target, encoding_format="float")
    return ex, expect_object(ex, "a float embeddings request")


@pytest.fixture(scope="module")
def b64(wire, target) -> tuple[Exchange, dict[str, Any]]:
    ex = embed(wire, target, encoding_format="base64")
    return ex, expect_object(ex, "a base64 embeddings request")


@check("embeddings.response-schema", surface="embeddings",
       rationale="Responses must match CreateEmbeddingResponse (object list, data[] of object embedding with "
                 "index, model, usage with prompt_tokens and total_tokens) and hold one vector per input.")
def test_embeddings_response_schema(floats, target) -> None:
    ex, body = floats
    problems = schema_problems("CreateEmbeddingResponse", body, strict=target.strict)
    data = body.get("data")
    if isinstance(data, list) and len(data) != len(INPUTS):
        problems.append(f"{len(INPUTS)} inputs gave {len(data)} embeddings")
    lengths = {len(v) for v in vectors(body, ex) if isinstance(v, list)}
    if len(lengths) > 1:
        problems.append(f"embeddings of one model differ in length: {sorted(lengths)}")
    expect_no_problems(ex, problems)


@check("embeddings.base64-is-string", surface="embeddings", claims=("embeddings-base64",),
       rationale="With encoding_format base64 every embedding is one base64 string; the openai SDK asks for "
                 "base64 by default and vendors that answer floats (or nested lists) break its decoder "
                 "(breakage 19).",
       faults=("embeddings-base64-ignored",))
def test_embeddings_base64_is_string(b64) -> None:
    ex, body = b64
    for i, value in enumerate(vectors(body, ex)):
        if not isinstance(value, str):
            fail(f"data[{i}].embedding is {type(value).__name__}, not a base64 string", ex.evidence())
        try:
            decode_base64_floats(value)
        except ValueError as exc:
            fail(f"data[{i}].embedding is not base64 of float32 values: {exc}", ex.evidence())


@check("embeddings.base64-matches-float", surface="embeddings", claims=("embeddings-base64",),
       rationale="base64 must decode (little-endian float32) to the float response within 1e-5; float64 or "
                 "big-endian bytes decode to garbage of the wrong length in every SDK (breakage 19).",
       faults=("embeddings-base64-float64",))
def test_embeddings_base64_matches_float(floats, b64, wire, target) -> None:
    ex, body = b64
    reference = float_vectors(floats[1], floats[0])
    encoded = vectors(body, ex)
    if len(encoded) != len(reference):
        fail(f"base64 gave {len(encoded)} embeddings, float gave {len(reference)}", ex.evidence())
    for i, (value, expected) in enumerate(zip(encoded, reference)):
        if not isinstance(value, str):
            pytest.skip(f"inconclusive: data[{i}].embedding is not a string (embeddings.base64-is-string fails)")
        try:
            decoded = decode_base64_floats(value)
        except ValueError as exc:
            fail(f"data[{i}].embedding does not decode as float32: {exc}", ex.evidence())
        if len(decoded) != len(expected):
            fail(f"data[{i}] decodes to {len(decoded)} float32 values; the float response has {len(expected)} "
                 f"(float64 bytes decode to twice as many)", ex.evidence())
        diff = max_abs_diff(decoded, expected)
        if diff > TOLERANCE and diff > noise_floor(wire, target, floats, TOLERANCE):
            fail(f"data[{i}] decodes to values up to {diff:.3g} away from the float response", ex.evidence())


def noise_floor(wire, target, floats, tolerance: float) -> float:
    """The allowed difference: 1e-5, or more where the target's own float vectors vary between two calls
    (hosted embeddings are not bit-deterministic); broken encodings differ far beyond either."""
    again = embed(wire, target, encoding_format="float")
    first = float_vectors(floats[1], floats[0])
    second = float_vectors(expect_object(again, "a repeated float embeddings request"), again)
    noise = max((max_abs_diff(a, b) for a, b in zip(first, second)), default=0.0)
    return max(tolerance, 4 * noise) if noise != float("inf") else tolerance


@check("embeddings.index-order", surface="embeddings",
       rationale="data[i] must carry index i and be the embedding of input i; clients zip results with inputs, "
                 "so a reordered batch silently mislabels every vector (breakage 19).",
       faults=("embeddings-index-shuffled",))
def test_embeddings_index_order(floats, wire, target) -> None:
    ex, body = floats
    indexes = [d.get("index") for d in body.get("data") or [] if isinstance(d, dict)]
    if indexes != list(range(len(INPUTS))):
        fail(f"data carries indexes {indexes} for {len(INPUTS)} inputs; expected {list(range(len(INPUTS)))}",
             ex.evidence())
    batch = float_vectors(body, ex)
    singles = []
    for text in INPUTS:
        one = embed(wire, target, [text], encoding_format="float")
        singles.append(float_vectors(expect_object(one, "a one-input embeddings request"), one)[0])
    for i, vector in enumerate(batch):
        j = nearest(vector, singles)
        if j != i:
            fail(f"data[{i}] (index {i}) is the embedding of input {j}, not input {i}", ex.evidence())


@check("embeddings.dimensions", surface="embeddings", claims=("dimensions",),
       rationale="`dimensions: 16` must return 16-value vectors; clients size vector-store columns from the "
                 "request, so ignoring it fails every insert. A model without the feature may refuse it with a 400 "
                 "that names `dimensions`, as api.openai.com does for text-embedding-ada-002 (not-claimed).",
       faults=("dimensions-ignored",))
def test_embeddings_dimensions(wire, target) -> None:
    ex = embed(wire, target, INPUTS[:2], encoding_format="float", dimensions=16)
    skip_if_refused(ex, ("dimensions",), "`dimensions`")
    for i, v in enumerate(float_vectors(expect_object(ex, "an embeddings request with dimensions=16"), ex)):
        if len(v) != 16:
            fail(f"data[{i}] has {len(v)} values with dimensions=16", ex.evidence())


@check("embeddings.input-forms", surface="embeddings",
       rationale="`input` may be a string, an array of strings, a token array or an array of token arrays "
                 "(LangChain sends token arrays); each must give one embedding per input.")
def test_embeddings_input_forms(wire, target) -> None:
    forms: list[tuple[str, Any, int]] = [("a string", "Hello", 1), ("an array of strings", ["Hello", "Bye"], 2),
                                         ("a token array", [100, 101, 102], 1),
                                         ("an array of token arrays", [[100, 101], [102, 103, 104]], 2)]
    for what, value, count in forms:
        ex = embed(wire, target, value, encoding_format="float")
        got = float_vectors(expect_object(ex, f"an embeddings request whose input is {what}"), ex)
        if len(got) != count:
            fail(f"input as {what} gave {len(got)} embeddings, not {count}", ex.evidence())
