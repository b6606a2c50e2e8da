"""Hermes-style tool-call markup in model output, parsed into OpenAI tool calls as the text arrives.

Qwen, Hermes and our tiny model write a call as ``<tool_call>\\n{"name": "f", "arguments": {...}}\\n</tool_call>``.
`ToolCallParser` turns a choice's text stream into pieces: content text, the start of a call (index, id, name)
and fragments of its arguments, so a streamed answer can announce each call once and then stream its
arguments, as OpenAI does. Whatever could still turn out to be markup (a partial ``<tool_call>``, the closing
brace of the wrapper object) is held back until it is decided; the pieces concatenate to the same result
whether the text came in one piece or token by token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
# The wrapper's head when "name" comes first (always so under our grammar): enough to announce the call.
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*(?=\S)', re.S)
_WRAPPER_END = re.compile(r"\s*\}\s*$")  # the wrapper object's closing brace, and the newline before CLOSE


@dataclass(frozen=True)
class Content:
    text: str


@dataclass(frozen=True)
class CallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class CallArguments:
    index: int
    fragment: str


Piece = Content | CallStart | CallArguments


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


@dataclass
class ToolCallParser:
    """Incremental parser for one choice. `feed` text as it is released, then `finish` once."""

    new_id: Callable[[], str]
    calls: list[ToolCall] = field(default_factory=list)
    content: str = ""
    _buf: str = ""
    _in_call: bool = False
    _args_from: int = -1  # where the arguments start in the call body once the head is parsed
    _args_sent: int = 0  # characters of the arguments already released

    def feed(self, text: str) -> list[Piece]:
        self._buf += text
        pieces: list[Piece] = []
        while self._step(pieces):
            pass
        return pieces

    def finish(self) -> list[Piece]:
        """The end of output: release what was held back (a call cut off by max_tokens stays partial)."""
        pieces: list[Piece] = []
        while self._step(pieces):
            pass
        if self._in_call:
            body = self._buf[: len(self._buf) - _partial_suffix(self._buf, CLOSE)]
            if self._args_from >= 0:
                args = body[self._args_from:]
                # Cut off: keep the arguments whole if they are complete JSON, else drop a trailing wrapper brace.
                self._arguments(pieces, args, strip_wrapper=not _is_json(args))
            # Cut off before the name was complete: no call can be reported, and the markup is not content
            # either (finish_reason "length" tells the client the answer is incomplete).
            self._in_call = False
        elif self._buf.strip() or not self.calls:
            self._content(pieces, self._buf)  # trailing whitespace after calls is markup layout, not content
        self._buf = ""
        return pieces

    @property
    def has_calls(self) -> bool:
        return bool(self.calls)

    # ------------------------------------------------------------------------------------------- internals

    def _step(self, pieces: list[Piece]) -> bool:
        """Consume what can be decided in the buffer; True if the state changed and another step may help."""
        if not self._in_call:
            at = self._buf.find(OPEN)
            if at < 0:
                # Hold back trailing whitespace (dropped if a call follows) and a partial opening tag.
                keep = _partial_suffix(self._buf, OPEN)
                head = self._buf[: len(self._buf) - keep]
                release = head.rstrip()
                self._content(pieces, release)
                self._buf = self._buf[len(release):]
                return False
            self._content(pieces, self._buf[:at].rstrip())
            self._buf = self._buf[at + len(OPEN):]
            self._in_call, self._args_from, self._args_sent = True, -1, 0
            return True
        end = self._buf.find(CLOSE)
        body = self._buf if end < 0 else self._buf[:end]
        if self._args_from < 0:
            head = _HEAD.match(body)
            if head:
                name = json.loads(f'"{head.group(1)}"')
                self.calls.append(ToolCall(self.new_id(), name))
                pieces.append(CallStart(len(self.calls) - 1, self.calls[-1].id, name))
                self._args_from = head.end()
        if end < 0:
            if self._args_from >= 0:
                held = _partial_suffix(body, CLOSE)
                self._arguments(pieces, body[self._args_from: len(body) - held])
            return False
        if self._args_from >= 0:
            self._arguments(pieces, body[self._args_from:])
        else:
            self._whole_call(pieces, body)
        self._buf = self._buf[end + len(CLOSE):].lstrip("\n")
        self._in_call = False
        return True

    def _arguments(self, pieces: list[Piece], args: str, strip_wrapper: bool = True) -> None:
        """Release the arguments written so far, less a trailing `}` that may close the wrapper object."""
        tail = _WRAPPER_END.search(args) if strip_wrapper else None
        if tail:
            args = args[: tail.start()]
        fragment = args[self._args_sent:]
        if fragment:
            self._args_sent += len(fragment)
            self.calls[-1].arguments += fragment
            pieces.append(CallArguments(len(self.calls) - 1, fragment))

    def _whole_call(self, pieces: list[Piece], body: str) -> None:
        """A complete call whose keys came in another order: parse it whole, or keep it as content."""
        try:
            call = json.loads(body)
        except ValueError:
            call = None
        if not (isinstance(call, dict) and isinstance(call.get("name"), str) and "arguments" in call):
            self._content(pieces, OPEN + body + CLOSE)
            return
        arguments = call["arguments"]
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        self.calls.append(ToolCall(self.new_id(), call["name"], text))
        pieces.append(CallStart(len(self.calls) - 1, self.calls[-1].id, call["name"]))
        pieces.append(CallArguments(len(self.calls) - 1, text))

    def _content(self, pieces: list[Piece], text: str) -> None:
        if text:
            self.content += text
            pieces.append(Content(text))
