"""Constrained decoding on CPU through llguidance: compile a grammar once, mask every step.

A `Grammar` is a compiled, validated grammar bound to one model's tokenizer; it hands out one `Matcher`
per choice row. Each step the sampler asks the row's matcher for the allowed next tokens (`mask`), bans the
rest, samples, and feeds the chosen token back (`consume`). JSON is compact: no free whitespace between tokens,
so a model cannot spend its budget on unbounded whitespace runs (separators are json.dumps' ", " and ": ").

Compiled grammars are cached (LRU) by the canonical JSON of what was asked for, per tokenizer, bounded both in
count and in size: a compiled grammar takes some 30-70 times its source text in memory (17 MB for a schema of
5,000 properties), so the cache holds at most `CACHE_SOURCE_BYTES` of grammar source, and a grammar larger than
that is compiled for its request and not kept.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import llguidance
import llguidance.hf
import llguidance.numpy as llg_np
import numpy as np
import torch

from .closure import CLOSE_SENTINEL, OPEN_SENTINEL, Shape
from .policy import generation_schema
from .schema_limits import schema_limit_error

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
# Exactly json.dumps' separators: what chat templates render tool calls with (so what models were trained on),
# and no other whitespace anywhere, so output length is bounded by content, never by whitespace runs.
JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
CACHE_SIZE = 128
CACHE_SOURCE_BYTES = 1 << 20


class GrammarError(ValueError):
    """The schema or grammar cannot be enforced; the message is llguidance's (names the feature)."""


_tokenizers: dict[tuple[int, int], tuple[Any, llguidance.LLTokenizer]] = {}
_tokenizers_lock = threading.Lock()


def ll_tokenizer(tokenizer: Any, vocab: int, eos_ids: Sequence[int] = ()) -> llguidance.LLTokenizer:
    """One LLTokenizer per HF tokenizer and vocabulary size (building one walks the whole vocabulary)."""
    key = (id(tokenizer), vocab)
    with _tokenizers_lock:
        hit = _tokenizers.get(key)
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
        eos = list(eos_ids) or None
        llt = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab, eos_token=eos)
        _tokenizers[key] = (tokenizer, llt)  # holding the tokenizer keeps its id from being reused
        return llt


class Matcher:
    """Grammar state of one row: which tokens may come next, and whether the output may end here."""

    __slots__ = ("_m", "_bits", "vocab")

    def __init__(self, matcher: llguidance.LLMatcher, vocab: int) -> None:
        self._m = matcher
        self.vocab = vocab
        self._bits = llg_np.allocate_token_bitmask(1, vocab)

    def mask(self, out: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
        """Fill `out` (bool, length vocab) with the tokens allowed next; returns it as a numpy view."""
        llg_np.fill_next_token_bitmask(self._m, self._bits, 0)
        allowed = np.unpackbits(self._bits.view(np.uint8), bitorder="little")[: self.vocab].view(np.bool_)
        if out is None:
            return allowed
        target = out.numpy() if isinstance(out, torch.Tensor) else out
        target[:] = allowed
        return target

    def consume(self, token_id: int) -> bool:
        """Advance by one sampled token; False puts the matcher in its (sticky) error state."""
        return bool(self._m.consume_token(int(token_id)))

    @property
    def accepting(self) -> bool:
        return bool(self._m.is_accepting())

    @property
    def stopped(self) -> bool:
        """Nothing but end of output may follow (also true in the error state)."""
        return bool(self._m.is_stopped())

    @property
    def error(self) -> str:
        return self._m.get_error()


class Grammar:
    """A validated grammar for one tokenizer; `matcher()` is cheap (a copy of a fresh compiled matcher)."""

    def __init__(self, llt: llguidance.LLTokenizer, grammar: str, vocab: int, shape: Shape | None = None) -> None:
        message = llguidance.LLMatcher.validate_grammar(grammar, llt)
        if message:
            raise GrammarError(message)
        proto = llguidance.LLMatcher(llt, grammar, log_level=0)
        if proto.is_error():
            raise GrammarError(proto.get_error())
        # A grammar can compile and still admit nothing (a $ref cycle that never reaches a value): its first
        # mask puts the matcher in error, and sampling from an all-banned row would fail mid-request.
        probe = proto.deep_copy()
        llg_np.fill_next_token_bitmask(probe, llg_np.allocate_token_bitmask(1, vocab), 0)
        if probe.is_error():
            raise GrammarError("the schema admits no JSON value (a $ref cycle that never reaches a type, or "
                               "constraints that contradict each other)")
        self._proto = proto
        self.vocab = vocab
        self.source = grammar
        self.shape = shape  # what the answer is, for the budget guard (closure.py); None: no JSON to close
        self.recipe: tuple[str, dict[str, Any]] | None = None  # how to compile it again (in the engine's process)

    def matcher(self) -> Matcher:
        return Matcher(self._proto.deep_copy(), self.vocab)


class GrammarCompiler:
    """Compiles JSON schemas and tool-call grammars for one model, with an LRU cache."""

    def __init__(self, tokenizer: Any, vocab: int, eos_ids: Sequence[int] = (), cache_size: int = CACHE_SIZE,
                 cache_bytes: int = CACHE_SOURCE_BYTES) -> None:
        self.llt = ll_tokenizer(tokenizer, vocab, eos_ids)
        self._tokenizer = tokenizer
        self.vocab = vocab
        self._cache: OrderedDict[str, Grammar] = OrderedDict()
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self.cached_bytes = 0  # grammar source held by the cache
        self._lock = threading.Lock()

    def _special_id(self, text: str) -> int | None:
        """The id of `text` where the vocabulary holds it as one special token."""
        token_id = self._tokenizer.convert_tokens_to_ids(text)
        unk = getattr(self._tokenizer, "unk_token_id", None)
        if isinstance(token_id, int) and token_id != unk and 0 <= token_id < self.vocab \
                and self.llt.is_special_token(token_id):
            return token_id
        return None

    def _markup(self, text: str) -> str:
        """A lark term for `text`: its token where the vocabulary holds it as one special token, else bytes."""
        token_id = self._special_id(text)
        return f"<[{token_id}]>" if token_id is not None else json.dumps(text)

    def _cached(self, key: str, build: Any, shape: Any = None) -> Grammar:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        grammar = Grammar(self.llt, build(), self.vocab, shape() if shape else None)
        size = len(grammar.source) + len(key)
        if size > self._cache_bytes:
            return grammar
        with self._lock:
            if key not in self._cache:
                self._cache[key] = grammar
                self.cached_bytes += size
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size or self.cached_bytes > self._cache_bytes:
                old_key, old = self._cache.popitem(last=False)
                self.cached_bytes -= len(old.source) + len(old_key)
        return grammar

    def __len__(self) -> int:
        return len(self._cache)

    def json_schema(self, schema: dict[str, Any]) -> Grammar:
        """Compact JSON valid under `schema`; GrammarError for schemas (or features) we cannot enforce."""
        if not isinstance(schema, dict):
            raise GrammarError("JSON schema must be an object")
        too_big = schema_limit_error(schema)
        if too_big:
            raise GrammarError(too_big)
        key = "schema:" + canonical(schema)
        grammar = self._cached(key, lambda: _from_schema(generation_schema(schema)),
                               lambda: Shape(content=_compact(generation_schema(schema))))
        grammar.recipe = ("json_schema", {"schema": schema})
        return grammar

    def json_object(self) -> Grammar:
        """Any JSON object (response_format json_object)."""
        return self.json_schema({"type": "object"})

    def tool_call(self, name: str, parameters: dict[str, Any] | None) -> Grammar:
        """`<tool_call>\\n{"name": <name>, "arguments": <parameters>}\\n</tool_call>` (Hermes-style markup)."""
        return self.chat_output(tools=[(name, parameters)], calls="required", parallel=False)

    def chat_output(self, *, content: dict[str, Any] | None = None, tools: Sequence[tuple[str, Any]] = (),
                    calls: str = "none", parallel: bool = True) -> Grammar:
        """What a chat answer may be: text (free, or JSON under `content`) and/or Hermes-style tool calls.

        `calls` is "none" (content only), "auto" (content, or optionally text then calls) or "required"
        (calls only; a forced named tool is "required" with one tool). Each call is
        `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`, name first so that a streaming parser can
        announce the call before its arguments; parallel calls are separated by a newline.
        """
        if calls not in ("none", "auto", "required"):
            raise ValueError(f"calls must be none, auto or required, not {calls!r}")
        if calls != "none" and not tools:
            raise ValueError("tool calls need at least one tool")
        spec = {"content": content, "tools": [[n, p] for n, p in tools] if calls != "none" else [],
                "calls": calls, "parallel": parallel}
        recipe = ("chat_output", {"content": content, "tools": [tuple(t) for t in tools], "calls": calls,
                                  "parallel": parallel})
        content = generation_schema(content) if content is not None else None
        tools = [(name, generation_schema(params) if params else params) for name, params in tools]
        grammar = self._cached("chat:" + canonical(spec), lambda: self._chat_lark(content, tools, calls, parallel),
                               lambda: self._shape(content, tools, calls, parallel))
        grammar.recipe = recipe
        return grammar

    def _shape(self, content: dict[str, Any] | None, tools: Sequence[tuple[str, Any]], calls: str,
               parallel: bool) -> Shape | None:
        if content is None and calls == "none":
            return None
        open_id, close_id = (self._special_id(m) for m in (TOOL_CALL_OPEN, TOOL_CALL_CLOSE))
        return Shape(content=content, body=_call_body(tools) if calls != "none" else None, calls=calls,
                     parallel=parallel and calls != "none",
                     open=(OPEN_SENTINEL if open_id is not None else TOOL_CALL_OPEN) + "\n",
                     close="\n" + (CLOSE_SENTINEL if close_id is not None else TOOL_CALL_CLOSE),
                     open_id=open_id, close_id=close_id)

    def _chat_lark(self, content: dict[str, Any] | None, tools: Sequence[tuple[str, Any]], calls: str,
                   parallel: bool) -> str:
        # Free text excludes special tokens, so no tool-call markup slips into text when no call is allowed.
        if calls == "none":
            rules = ["start: content" if content is not None else "start: TEXT"]
        elif calls == "required":
            rules = ["start: calls"]
        elif content is None:
            rules = ["start: TEXT calls?"]  # Hermes models may think aloud before calling
        else:
            rules = ["start: content | calls"]
        if content is None and calls != "required":
            rules.append("TEXT: /(?s:.*)/")
        if content is not None and calls != "required":
            rules.append(f"content: %json {json.dumps(_compact(content))}")
        if calls != "none":
            rules.append('calls: call ("\\n" call)*' if parallel else "calls: call")
            open_, close = self._markup(TOOL_CALL_OPEN), self._markup(TOOL_CALL_CLOSE)
            rules.append(f'call: {open_} "\\n" body "\\n" {close}')
            rules.append(f"body: %json {json.dumps(_call_body(tools))}")
        try:
            return llguidance.LLMatcher.grammar_from_lark("\n".join(rules) + "\n")
        except ValueError as exc:
            raise GrammarError(str(exc)) from exc


def _call_body(tools: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The JSON of one Hermes call body: name first, then the arguments of that tool. Each tool's `$defs` move to
    the body's root (prefixed by the tool's position), where its `$ref`s now point."""
    defs: dict[str, Any] = {}
    schemas = []
    for i, (name, params) in enumerate(tools):
        params, found = _hoist_defs(params, f"t{i}_")
        defs.update(found)
        schemas.append(tool_call_schema(name, params))
    body = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return _compact({**body, "$defs": defs} if defs else body)


def _hoist_defs(schema: Any, prefix: str) -> tuple[Any, dict[str, Any]]:
    """`schema` with its `$defs` / `definitions` taken out and every local `$ref` renamed to `#/$defs/<prefix>...`
    (a `$ref` to the schema's own root too), and the definitions so taken."""
    if not isinstance(schema, dict):
        return schema, {}
    local = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    if not local and not _refers_to_root(schema):
        return schema, {}

    def rename(node: Any) -> Any:
        if isinstance(node, list):
            return [rename(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: rename(v) for k, v in node.items() if k not in ("$defs", "definitions")}
        ref = node.get("$ref")
        if ref == "#":
            out["$ref"] = f"#/$defs/{prefix}root"
        elif isinstance(ref, str):
            for head in ("#/$defs/", "#/definitions/"):
                if ref.startswith(head):
                    out["$ref"] = f"#/$defs/{prefix}{ref[len(head):]}"
        return out

    body = rename(schema)
    hoisted = {f"{prefix}{name}": rename(sub) for name, sub in local.items()}
    if _refers_to_root(schema):
        hoisted[f"{prefix}root"] = body
    return body, hoisted


def _refers_to_root(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == "#" or any(_refers_to_root(v) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to_root(v) for v in node)
    return False


def tool_call_schema(name: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": parameters or {"type": "object"}},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _compact(schema: dict[str, Any]) -> dict[str, Any]:
    return dict(schema, **{"x-guidance": JSON_OPTIONS})


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _from_schema(schema: dict[str, Any]) -> str:
    try:
        return llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
    except ValueError as exc:
        raise GrammarError(str(exc)) from exc


def compiler_for(loaded: Any) -> GrammarCompiler:
    """The compiler of a LoadedModel, built on first use and kept on the model object."""
    compiler = getattr(loaded, "_grammar_compiler", None)
    if compiler is None:
        compiler = GrammarCompiler(loaded.tokenizer, loaded.vocab_size, loaded.eos_ids)
        loaded._grammar_compiler = compiler
    return compiler
