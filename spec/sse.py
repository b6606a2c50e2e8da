"""Server-sent events: the one codec the server, suites, proxy and load generator share.

Writer: :func:`encode_event`, :func:`encode_json`, :func:`encode_comment` and :data:`DONE`
produce LF-terminated lines and end every event with a blank line.

Reader: :class:`SSEReader` is an incremental, byte-level parser following the WHATWG
EventSource rules (HTML, "Server-sent events", parsing an event stream):

* lines end with CRLF, LF or CR; a CR at the end of one :meth:`SSEReader.feed` followed by
  an LF at the start of the next is one line end. The line is processed at the CR (so a
  CR-only stream is not delayed by a feed); if that already completed an item, the late LF
  is not part of that item's ``raw``, which then ends with the CR;
* bytes are split into lines before decoding, so an event or a multi-byte UTF-8 character
  may be split at any byte boundary across feeds; invalid UTF-8 decodes to U+FFFD;
* one UTF-8 BOM at the very start of the stream is ignored;
* ``data``, ``event``, ``id`` and ``retry`` fields; one space after the colon is stripped;
  a line without a colon is a field with an empty value; unknown fields are ignored;
  ``id`` values containing NUL and non-numeric ``retry`` values are ignored;
* lines starting with ``:`` are comments.

It differs from a browser's EventSource in what it *reports*, never in how it parses, because
conformance checks need to see what a browser would silently drop:

* comments are returned as items (``kind == "comment"``);
* a block that set only ``event``/``id``/``retry`` (no ``data`` line) is returned with
  ``has_data=False`` (a browser dispatches nothing; the OpenAI SDK tries to JSON-decode it);
* an event still open when :meth:`SSEReader.close` is called is returned with
  ``complete=False`` (a browser and the SDKs drop it).

Pure: no I/O, no clocks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DONE",
    "SSEItem",
    "SSEReader",
    "encode_comment",
    "encode_event",
    "encode_json",
    "iter_items",
    "parse",
]

DONE: bytes = b"data: [DONE]\n\n"
"""The OpenAI end-of-stream sentinel event."""

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"[\r\n]")
_TEXT_LINE_END = re.compile(r"\r\n|\r|\n")


# ------------------------------------------------------------------------------ writer


def _check_field(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"SSE {name} must not contain CR or LF: {value!r}")


def encode_event(data: str, event: str | None = None, id: str | None = None, *, retry: int | None = None) -> bytes:
    """One event: optional ``event:``/``id:``/``retry:`` lines, one ``data:`` line per line of
    ``data`` (CRLF, CR or LF in ``data`` all split lines), LF line ends, a blank line last."""
    parts: list[str] = []
    if event is not None:
        _check_field("event", event)
        parts.append(f"event: {event}\n")
    if id is not None:
        _check_field("id", id)
        if "\0" in id:
            raise ValueError("SSE id must not contain NUL (readers ignore such ids)")
        parts.append(f"id: {id}\n")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"SSE retry must be a non-negative integer, got {retry!r}")
        parts.append(f"retry: {retry}\n")
    for line in _TEXT_LINE_END.split(data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_json(obj: Any, event: str | None = None) -> bytes:
    """``obj`` as compact JSON (``ensure_ascii=False``, UTF-8) in a single ``data:`` line."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return encode_event(text, event=event)


def encode_comment(text: str = "") -> bytes:
    """A comment (keep-alive) block: ``: text`` per line, then a blank line.

    Readers ignore it; it is meant to go *between* events.
    """
    lines = _TEXT_LINE_END.split(text)
    return ("".join(f": {line}\n" if line else ":\n" for line in lines) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------ reader


@dataclass(frozen=True, slots=True)
class SSEItem:
    """One thing read from an event stream: an event or a comment.

    For events, ``data`` is the ``data:`` lines joined with ``\\n`` (``""`` when none);
    ``event``/``id``/``retry`` are the values of those fields *in this event* (None when
    absent; an empty ``event:`` gives ``""``). For comments, ``data`` is the text after the
    colon (one leading space stripped) and the other fields are None.

    ``raw`` holds the bytes the item was read from (its lines with their line ends, a BOM
    included; for events the terminating blank line too, interleaved comment lines not).
    It is evidence only and takes no part in equality.
    """

    kind: Literal["event", "comment"]
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    has_data: bool = False
    complete: bool = True
    raw: bytes = field(default=b"", compare=False)

    @property
    def is_done(self) -> bool:
        """True for an event whose data is exactly the ``[DONE]`` sentinel."""
        return self.kind == "event" and self.data == "[DONE]"

    @property
    def is_comment(self) -> bool:
        return self.kind == "comment"

    def json(self) -> Any:
        """``json.loads(self.data)`` (raises ``json.JSONDecodeError`` like the OpenAI SDK)."""
        return json.loads(self.data)


class SSEReader:
    """Incremental event-stream parser: ``feed(bytes) -> [SSEItem]``, then ``close()``.

    Every complete item is returned by the ``feed`` call that completed it, so the reader
    can time-stamp events as they arrive.
    """

    __slots__ = (
        "_buf",
        "_bom_state",
        "_skip_lf",
        "_lf_to_block",
        "_closed",
        "_data",
        "_event",
        "_id",
        "_retry",
        "_seen",
        "_block_raw",
        "last_event_id",
    )

    def __init__(self) -> None:
        self._buf = bytearray()
        self._bom_state = 0  # 0: undecided, 1: BOM at buffer start to skip, 2: done
        self._skip_lf = False
        self._lf_to_block = False
        self._closed = False
        self.last_event_id = ""
        """The last event ID buffer of the WHATWG algorithm (persists across events)."""
        self._reset_block()

    def _reset_block(self) -> None:
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._seen = False
        self._block_raw = bytearray()

    # -- public ---------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[SSEItem]:
        """Consume ``chunk`` (any size, split anywhere) and return the items it completed."""
        if self._closed:
            raise ValueError("SSEReader.feed() after close()")
        if not chunk:
            return []
        buf = self._buf
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if self._lf_to_block:  # the CR ended a field line of a still-open event
                    self._block_raw += b"\n"
        buf += chunk
        if self._bom_state == 0:
            if len(buf) < len(_BOM) and _BOM.startswith(bytes(buf)):
                return []  # could still be a BOM
            self._bom_state = 1 if buf.startswith(_BOM) else 2
        return self._drain(final=False)

    def close(self) -> list[SSEItem]:
        """End of stream: return what is left (a last unterminated line is processed; an
        event without its blank line is returned with ``complete=False``)."""
        if self._closed:
            return []
        self._closed = True
        if self._bom_state == 0:
            self._bom_state = 2
        items = self._drain(final=True)
        if self._buf:
            content = self._content_start()
            raw = bytes(self._buf)
            self._buf.clear()
            self._line(raw[content:], raw, items)
        if self._seen:
            items.append(self._emit(complete=False))
        self._reset_block()
        return items

    # -- internals ------------------------------------------------------------------

    def _content_start(self) -> int:
        if self._bom_state == 1:
            self._bom_state = 2
            return len(_BOM)
        return 0

    def _drain(self, final: bool) -> list[SSEItem]:
        items: list[SSEItem] = []
        buf = self._buf
        pos = 0
        n = len(buf)
        while True:
            m = _LINE_END.search(buf, pos)
            if m is None:
                break
            idx = m.start()
            if buf[idx] == 0x0D:  # CR
                if idx + 1 < n:
                    end = idx + 2 if buf[idx + 1] == 0x0A else idx + 1
                else:
                    end = idx + 1
                    if not final:
                        self._skip_lf = True
            else:
                end = idx + 1
            content = pos + self._content_start() if pos == 0 else pos
            in_block = self._line(bytes(buf[content:idx]), bytes(buf[pos:end]), items)
            if self._skip_lf:
                self._lf_to_block = in_block
            pos = end
        if pos:
            del buf[:pos]
        return items

    def _line(self, line: bytes, raw: bytes, items: list[SSEItem]) -> bool:
        """Process one line; True when its bytes joined the (still open) current block."""
        if not line:
            if self._seen:
                self._block_raw += raw
                items.append(self._emit(complete=True))
            self._reset_block()
            return False
        text = line.decode("utf-8", "replace")
        if text[0] == ":":
            value = text[1:]
            if value[:1] == " ":
                value = value[1:]
            items.append(SSEItem(kind="comment", data=value, raw=raw))
            return False
        self._block_raw += raw
        name, colon, value = text.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._seen = True
        elif name == "event":
            self._event = value
            self._seen = True
        elif name == "id":
            if "\0" not in value:
                self._id = value
                self.last_event_id = value
                self._seen = True
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self._retry = int(value)
                self._seen = True
        # any other field is ignored
        return True

    def _emit(self, complete: bool) -> SSEItem:
        return SSEItem(
            kind="event",
            data="\n".join(self._data),
            event=self._event,
            id=self._id,
            retry=self._retry,
            has_data=bool(self._data),
            complete=complete,
            raw=bytes(self._block_raw),
        )


def parse(body: bytes) -> list[SSEItem]:
    """Parse a whole event stream at once."""
    reader = SSEReader()
    return reader.feed(body) + reader.close()


def iter_items(chunks: Iterable[bytes]) -> Iterator[SSEItem]:
    """Items from an iterable of byte chunks (e.g. ``response.iter_bytes()``), then close."""
    reader = SSEReader()
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.close()
