"""Budget-aware closing of structured output: a JSON answer ends valid within its token budget.

The grammar keeps every token valid, but valid is not finished: a small model at temperature 1 writes digits,
keys and list items until `max_tokens` cuts the JSON off. The guard of one row follows what the row wrote
(free text, tool-call markup, the JSON value through `JsonCursor`) and, for each sampled token, what finishing
the answer would then cost in tokens: the shortest valid completion, the closing markup and the end token. A
token after which the answer could no longer finish in the budget is replaced by the first token of the
shortest completion from before it, and the rest of that completion is forced after it. An object key written
twice is refused (the sampler draws again without it).

An answer is cut off (finish_reason "length") only when even its shortest completion never fitted.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .jsonclose import JsonCursor, Schemas, Unsupported

# Special markup tokens stand in the guard's text as private-use characters: one character, one token.
OPEN_SENTINEL, CLOSE_SENTINEL = "\ue000", "\ue001"


@dataclass(frozen=True)
class Shape:
    """What a constrained answer is: JSON `content`, and/or tool calls `open` + body + `close` (Hermes markup)."""

    content: dict[str, Any] | None = None  # the generation schema of a JSON answer
    body: dict[str, Any] | None = None  # the generation schema of one call body {"name": ..., "arguments": ...}
    calls: str = "none"  # none | auto | required
    parallel: bool = False
    open: str = OPEN_SENTINEL + "\n"
    close: str = "\n" + CLOSE_SENTINEL
    open_id: int | None = None  # the special token OPEN_SENTINEL stands for (None: markup is plain text)
    close_id: int | None = None


class Tokens:
    """Counts and produces the tokens of guard text (sentinels are their special tokens)."""

    CACHE = 4096  # completions repeat from token to token (the same closing tail): their tokens are kept

    def __init__(self, encode: Callable[[str], list[int]], shape: Shape) -> None:
        self._plain = encode
        self._special = {OPEN_SENTINEL: shape.open_id, CLOSE_SENTINEL: shape.close_id}
        self._seen: dict[str, list[int]] = {}

    def _encode(self, text: str) -> list[int]:
        found = self._seen.get(text)
        if found is None:
            if len(self._seen) >= self.CACHE:
                self._seen.clear()
            found = self._seen[text] = self._plain(text)
        return found

    def of(self, text: str) -> list[int]:
        out: list[int] = []
        part = ""
        for ch in text:
            token = self._special.get(ch)
            if token is None:
                part += ch
                continue
            if part:
                out += self._encode(part)
                part = ""
            out.append(token)
        return out + (list(self._encode(part)) if part else [])


class Progress:
    """Where the answer stands: `phase` text | open | json | close | between, with how far into the markup."""

    def __init__(self, shape: Shape, schemas: dict[str, Schemas]) -> None:
        self.shape = shape
        self._schemas = schemas
        self.matched = 0  # characters of the current markup already written
        self.in_call = False  # the JSON being written is a call's body, not the content
        self.cursor: JsonCursor | None = None
        if shape.calls == "none":
            self.phase = "json"
            self.cursor = self._cursor()
        elif shape.calls == "required":
            self.phase = "open"
        else:  # auto: free text (or JSON content, when a format is set) until a call opens
            self.phase = "text" if shape.content is None else "either"

    def _cursor(self) -> JsonCursor:
        key = "body" if self.in_call else "content"
        return JsonCursor(self.shape.body if self.in_call else self.shape.content, self._schemas[key])

    def copy(self) -> Progress:
        out = Progress.__new__(Progress)
        out.shape, out._schemas, out.phase, out.matched = self.shape, self._schemas, self.phase, self.matched
        out.in_call = self.in_call
        out.cursor = self.cursor.copy() if self.cursor is not None else None
        return out

    def feed(self, text: str) -> bool:
        """Read `text`; True when it wrote an object key twice."""
        duplicate = False
        for ch in text:
            duplicate |= self._char(ch)
        return duplicate

    def _char(self, ch: str) -> bool:
        shape = self.shape
        if self.phase == "either":
            if ch != shape.open[0]:
                self.phase, self.cursor = "json", self._cursor()
                return self._char(ch)
            self.phase = "text"
        if self.phase == "text":
            if ch == shape.open[0]:
                self.phase, self.matched = "open", 1
                self._opened()
            return False
        if self.phase == "between":  # calls are separated by a newline: after it, another call must follow
            self.phase, self.matched = "open", 0
            if ch == "\n":
                return False
        if self.phase == "open":
            if self.matched < len(shape.open) and ch == shape.open[self.matched]:
                self.matched += 1
                self._opened()
            return False
        if self.phase == "json":
            assert self.cursor is not None
            duplicate = self.cursor.feed(ch)
            if self.cursor.done:
                self.phase, self.matched = ("close", 0) if self.in_call else ("done", 0)
            return duplicate
        if self.phase == "close" and self.matched < len(shape.close) and ch == shape.close[self.matched]:
            self.matched += 1
            if self.matched == len(shape.close):
                self.phase = "between" if shape.parallel else "done"
        return False

    def _opened(self) -> None:
        if self.matched == len(self.shape.open):
            self.in_call = True
            self.phase, self.cursor = "json", self._cursor()

    def signature(self) -> tuple:
        """Equal signatures have equal `rest()` (see JsonCursor.signature)."""
        inner = self.cursor.signature() if self.cursor is not None and self.phase == "json" else ()
        return (self.phase, self.matched, self.in_call, inner)

    def rest(self) -> str:
        """The shortest guard text that finishes the answer from here (end token not included)."""
        shape = self.shape
        if self.phase in ("text", "between", "done"):
            return ""
        if self.phase == "either":
            return JsonCursor(shape.content, self._schemas["content"]).completion()
        if self.phase == "open":
            body = JsonCursor(shape.body, self._schemas["body"]).completion()
            return shape.open[self.matched:] + body + shape.close
        if self.phase == "json":
            assert self.cursor is not None
            return self.cursor.completion() + (shape.close if self.in_call else "")
        return shape.close[self.matched:]


class BudgetGuard:
    """One row's guard: vets each sampled token against the budget, forcing the shortest close when needed."""

    RESAMPLE = -1

    def __init__(self, shape: Shape, max_tokens: int, encode: Callable[[str], list[int]],
                 token_bytes: list[bytes], eos: int) -> None:
        self.shape = shape
        self.max_tokens = max_tokens
        self.tokens = Tokens(encode, shape)
        self.eos = eos
        self._bytes = token_bytes
        self._special = {k: v for k, v in ((shape.open_id, OPEN_SENTINEL), (shape.close_id, CLOSE_SENTINEL))
                         if k is not None}
        schemas = {"content": Schemas(shape.content or {}), "body": Schemas(shape.body or {})}
        self.progress = Progress(shape, schemas)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.forced: list[int] = []
        self.forcing = False  # the answer is being closed: what remains is forced
        self._byte_tokens: dict[int, int] | None = None  # byte value -> its single-byte token, built on first use
        self._priced: tuple[Any, int | None] = (None, None)  # (state signature, cost) of the last pricing

    def text_of(self, token: int, decoder: Any) -> str:
        special = self._special.get(token)
        return special if special is not None else decoder.decode(self._bytes[token])

    def cost(self, progress: Progress, decoder: Any) -> int | None:
        """Tokens still needed to finish from `progress`, the end token included (None: cannot tell). Most
        tokens of an answer are inside free strings, where the price does not change: it is kept per state."""
        key = (progress.signature(), decoder.getstate()[0])
        if key == self._priced[0]:
            return self._priced[1]
        try:
            found: int | None = len(self._finish(progress, decoder)) + 1
        except Unsupported:
            found = None
        self._priced = (key, found)
        return found

    def _finish(self, progress: Progress, decoder: Any) -> list[int]:
        """The tokens that finish the answer: the rest of a character cut between tokens, then the shortest
        completion."""
        return self._continuation(decoder.getstate()[0]) + self.tokens.of(progress.rest())

    def _continuation(self, pending: bytes) -> list[int]:
        """Single-byte tokens completing a UTF-8 character whose first bytes were written (the smallest
        continuation bytes that make a valid character after that lead byte)."""
        if not pending:
            return []
        lead = pending[0]
        size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        first = {0xE0: 0xA0, 0xF0: 0x90}.get(lead, 0x80)
        missing = [first if len(pending) == 1 else 0x80] + [0x80] * (size - len(pending) - 1)
        if self._byte_tokens is None:
            self._byte_tokens = {raw[0]: i for i, raw in enumerate(self._bytes) if len(raw) == 1}
        if any(b not in self._byte_tokens for b in missing):
            raise Unsupported("no single-byte token")
        return [self._byte_tokens[b] for b in missing]

    def vet(self, token: int, generated: int, allowed: Callable[[int], bool]) -> int:
        """The token to emit instead of (or as) `token`, given `generated` tokens so far; RESAMPLE asks the
        sampler to draw again without `token` (it wrote an object key twice)."""
        left = self.max_tokens - generated  # tokens this row may still emit, this one included
        if self.forced:
            nxt = self.forced[0]
            if allowed(nxt):
                return self._emit(self.forced.pop(0))
            self.forced, self.forcing = [], False  # the grammar disagrees with our completion: sample freely
        if token == self.eos or self.forcing:
            return self._emit(token)
        candidate = self.progress.copy()
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        decoder.setstate(self._decoder.getstate())
        if candidate.feed(self.text_of(token, decoder)):
            return self.RESAMPLE
        need = self.cost(candidate, decoder)
        if need is None or 1 + need <= left:
            return self._emit(token)
        return self.close_now(left, allowed, token)

    def close_now(self, left: int, allowed: Callable[[int], bool], fallback: int) -> int:
        """Start forcing the shortest completion from the current state (when it fits), else keep `fallback`."""
        try:
            forced = self._finish(self.progress, self._decoder) + [self.eos]
        except Unsupported:
            return self._emit(fallback)
        if len(forced) > left or not allowed(forced[0]):
            return self._emit(fallback)
        self.forcing = True
        self.forced = forced[1:]
        return self._emit(forced[0])

    def _emit(self, token: int) -> int:
        if token != self.eos:
            self.progress.feed(self.text_of(token, self._decoder))
        return token
