"""Cost of constrained decoding (llguidance) on the tiny model, measured in one run.

Prints schema compile time (cold and cached), per-token mask cost, the budget guard's per-token cost, and
constrained (grammar and guard) vs unconstrained generation tokens/s through the engine, with the ratios. Usage:

    python load/bench_grammar.py [--rows 8] [--rounds 5] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import torch

from wirecheck.reference_server.engine.grammar import GrammarCompiler, compiler_for
from wirecheck.reference_server.engine.loader import load_model
from wirecheck.reference_server.engine.types import SamplingParams
from wirecheck.reference_server.engine.worker import Engine

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "colour": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 4},
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string",
                                                                                         "pattern": "^[0-9]{5}$"}},
                    "required": ["city"]},
    },
    "required": ["name", "age", "colour"],
    "additionalProperties": False,
}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def compile_times(lm, repeats: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    compiler = GrammarCompiler(lm.tokenizer, lm.vocab_size, lm.eos_ids)  # a fresh cache; LLTokenizer reused
    tokenizer_s = time.perf_counter() - t0
    cold = []
    for i in range(repeats):
        schema = dict(SCHEMA, title=f"cold-{i}")  # a distinct key each time: a real compile
        t0 = time.perf_counter()
        compiler.json_schema(schema)
        cold.append(time.perf_counter() - t0)
    cached = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        compiler.json_schema(dict(SCHEMA, title="cold-0"))
        cached.append(time.perf_counter() - t0)
    return tokenizer_s, statistics.median(cold), statistics.median(cached)


def tool_compile_time(lm, repeats: int) -> float:
    """A chat answer that must call one of two tools (tool_choice required), compiled cold."""
    compiler = GrammarCompiler(lm.tokenizer, lm.vocab_size, lm.eos_ids)
    times = []
    for i in range(repeats):
        tools = [(f"describe_{i}", SCHEMA), ("get_weather", {"type": "object", "properties": {
            "city": {"type": "string"}}, "required": ["city"]})]
        t0 = time.perf_counter()
        compiler.chat_output(tools=tools, calls="required", parallel=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mask_cost(lm, steps: int) -> tuple[float, float, int]:
    """Mask + consume per token along a valid output, and the cost of -inf-filling a logits row."""
    grammar = compiler_for(lm).json_schema(SCHEMA)
    text = json.dumps({"name": "Ada Lovelace", "age": 36, "colour": "green", "tags": ["math", "poet"],
                       "address": {"city": "London", "zip": "12345"}})  # the grammar's own separators
    tokens = lm.tokenizer.encode(text, add_special_tokens=False)
    logits = torch.randn(lm.vocab_size)
    per_token, fill = [], []
    done = 0
    while done < steps:
        matcher = grammar.matcher()
        for token in tokens:
            t0 = time.perf_counter()
            allowed = matcher.mask()
            t1 = time.perf_counter()
            logits.masked_fill(~torch.from_numpy(allowed), float("-inf"))
            t2 = time.perf_counter()
            assert matcher.consume(token), matcher.error
            t3 = time.perf_counter()
            per_token.append((t1 - t0) + (t3 - t2))
            fill.append(t2 - t1)
            done += 1
    return statistics.median(per_token), statistics.median(fill), len(tokens)


def guard_cost(lm, steps: int) -> float:
    """The budget guard's vet per token (engine/closure.py): following the answer and pricing its shortest close,
    along the same valid output, with a budget that never forces."""
    from wirecheck.reference_server.engine.closure import BudgetGuard

    grammar = compiler_for(lm).json_schema(SCHEMA)
    text = json.dumps({"name": "Ada Lovelace", "age": 36, "colour": "green", "tags": ["math", "poet"],
                       "address": {"city": "London", "zip": "12345"}})
    tokens = lm.tokenizer.encode(text, add_special_tokens=False)
    encode = lambda t: lm.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731 - what the engine passes
    per_token, done = [], 0
    while done < steps:
        guard = BudgetGuard(grammar.shape, 10_000, encode, lm.token_bytes, lm.eos_ids[0])
        for generated, token in enumerate(tokens):
            t0 = time.perf_counter()
            guard.vet(token, generated, lambda _: True)
            per_token.append(time.perf_counter() - t0)
            done += 1
    return statistics.median(per_token)


async def _gen(engine, ids, params) -> int:
    tokens = 0
    stream = engine.generate(ids, params)
    async for _ in stream:
        pass
    tokens += stream.usage.completion_tokens
    return tokens


def throughput(engine, grammar, rows: int, rounds: int, max_tokens: int) -> tuple[float, float]:
    """Tokens/s without and with `grammar`, rounds interleaved so drift in machine load hits both alike."""
    ids = engine.loaded.tokenizer.encode("Describe a person as JSON:", add_special_tokens=False)

    async def one_round(seed: int, g) -> int:
        params = [SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=seed * 100 + r, grammar=g)
                  for r in range(rows)]
        return sum(await asyncio.gather(*(_gen(engine, ids, p) for p in params)))

    tokens, elapsed = [0, 0], [0.0, 0.0]
    for r in range(rounds):
        for k, g in enumerate((None, grammar)):
            t0 = time.perf_counter()
            tokens[k] += asyncio.run(one_round(r, g))
            elapsed[k] += time.perf_counter() - t0
    return tokens[0] / elapsed[0], tokens[1] / elapsed[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=8, help="concurrent requests per round")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--compile-repeats", type=int, default=20)
    args = ap.parse_args()

    lm = load_model("tiny", device="cpu")
    t0 = time.perf_counter()
    compiler_for(lm)  # first LLTokenizer for this tokenizer (walks the vocabulary)
    first_tokenizer = time.perf_counter() - t0
    _, cold, cached = compile_times(lm, args.compile_repeats)
    tools_cold = tool_compile_time(lm, args.compile_repeats)
    per_token, fill, length = mask_cost(lm, 2000)
    vet = guard_cost(lm, 2000)

    engine = Engine(lm)
    engine.start()
    try:
        grammar = compiler_for(lm).json_schema(SCHEMA)
        throughput(engine, grammar, args.rows, 1, args.max_tokens)  # warm-up
        free, constrained = throughput(engine, grammar, args.rows, args.rounds, args.max_tokens)
    finally:
        engine.close()

    print(f"model tiny: vocab {lm.vocab_size}, torch threads {torch.get_num_threads()}")
    print(f"LLTokenizer build (once per model):     {ms(first_tokenizer)}")
    print(f"schema compile, cold (median of {args.compile_repeats}):   {ms(cold)}")
    print(f"schema compile, cached:                 {ms(cached)}   (cold/cached {cold / cached:.0f}x)")
    print(f"tool-call grammar (2 tools), cold:      {ms(tools_cold)}")
    print(f"mask + consume per token (median):      {ms(per_token)}   ({length}-token object)")
    print(f"-inf fill of one logits row:            {ms(fill)}")
    print(f"budget guard vet per token (median):    {ms(vet)}   (closes JSON within max_tokens)")
    print(f"generation, {args.rows} concurrent rows, {args.rounds} rounds x {args.max_tokens} max tokens:")
    print(f"  unconstrained: {free:.0f} tok/s")
    print(f"  constrained:   {constrained:.0f} tok/s")
    print(f"  ratio constrained/unconstrained: {constrained / free:.2f}")
    print(f"  per-token overhead of constraint: {ms(1 / constrained - 1 / free)} "
          f"(= {(1 / constrained - 1 / free) * free:.2f}x an unconstrained token)")


if __name__ == "__main__":
    main()
