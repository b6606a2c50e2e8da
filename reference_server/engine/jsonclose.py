"""Where a partial JSON answer stands under its schema, and the shortest text that completes it validly.

`JsonCursor` reads compact JSON (the grammar's own separators ", " and ": ") one piece at a time, keeping a stack
of open values with the schemas each may still satisfy. From any point it gives `completion()`: the shortest
suffix that makes the whole value valid (the rest of a string, number or literal, the required keys not yet
written, closing brackets). The decoder uses it to close an answer before its token budget runs out, and
`feed` reports a key written twice in one object (which no schema can forbid) so that it can be refused.

Property order follows the schema's `properties`, as the grammar (llguidance) does. Pure Python, no tokens: the
caller counts the completion's tokens.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Any

from wirecheck.spec import json_pointer

FORMAT_EXAMPLES = {"date-time": "2000-01-01T00:00:00Z", "date": "2000-01-01", "time": "00:00:00Z",
                   "email": "a@b.co", "uuid": "00000000-0000-0000-0000-000000000000", "uri": "http://a.b",
                   "ipv4": "0.0.0.0", "ipv6": "::", "hostname": "a"}
LITERALS = {"t": "true", "f": "false", "n": "null"}
_MAX_PIECES = 512  # a completion is built piece by piece; a schema that never closes stops here
# Longer completions are not built (Unsupported): no sensible token budget closes them, and a schema's
# minLength / minItems of a billion must not make the decoder allocate a billion characters.
MAX_CHARS = 16_384


class Unsupported(ValueError):
    """The schema holds something whose shortest completion this module cannot construct (a pattern)."""


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# ------------------------------------------------------------------------------------------------ schemas


class Schemas:
    """A root schema's sub-schemas as flat options: `$ref` resolved, anyOf/oneOf unfolded, allOf merged, one
    JSON type per option."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self._minimal: dict[str, str | None] = {}
        self._layouts: dict[int, tuple[dict[str, Any], dict[str, int], list[tuple[int, str]]]] = {}

    def layout(self, opt: dict[str, Any]) -> tuple[dict[str, int], list[tuple[int, str]]]:
        """An object option's key -> declaration index, and its required keys as (index, key) in order: kept
        per option, so that each piece of a completion does not rescan thousands of properties."""
        hit = self._layouts.get(id(opt))
        if hit is None or hit[0] is not opt:  # the option is held in the entry, so its id is not reused
            index = {key: i for i, key in enumerate(opt.get("properties") or {})}
            required = set(opt.get("required") or [])
            hit = self._layouts[id(opt)] = (opt, index, [(i, k) for k, i in index.items() if k in required])
        return hit[1], hit[2]

    def resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
            target = json_pointer(self.root, node["$ref"])
            target = target if isinstance(target, dict) else {}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **rest} if rest else target
            seen += 1
        return node if isinstance(node, dict) else {}

    def options(self, node: Any) -> list[dict[str, Any]]:
        node = self.resolve(node)
        if node is True or node == {}:
            return [{"type": t} for t in ("string", "integer", "number", "boolean", "null", "object", "array")]
        if "allOf" in node:
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part = self.resolve(part)
                merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
            node = merged
        for key in ("anyOf", "oneOf"):
            if key in node:
                base = {k: v for k, v in node.items() if k != key}
                return [opt for branch in node[key] for opt in self.options({**base, **self.resolve(branch)})]
        if "const" in node or "enum" in node:
            return [node]
        kinds = node.get("type")
        if isinstance(kinds, list):
            return [{**node, "type": k} for k in kinds]
        if kinds is None:
            kinds = "object" if "properties" in node else "array" if "items" in node else None
            if kinds is None:
                return self.options(True)
            return [{**node, "type": kinds}]
        return [node]

    def minimal(self, node: Any) -> str:
        """The shortest compact JSON valid under `node`."""
        key = json.dumps(node, sort_keys=True, default=str)
        if key not in self._minimal:
            self._minimal[key] = None  # a recursive schema under construction: not a candidate
            found = [m for opt in self.options(node) if (m := self._minimal_option(opt)) is not None]
            if not found:
                raise Unsupported(f"no completion for {node!r}")
            self._minimal[key] = min(found, key=len)
        value = self._minimal[key]
        if value is None:
            raise Unsupported("recursive schema")
        return value

    def cheapest(self, opts: list[dict[str, Any]]) -> str:
        """The shortest minimal value among `opts` (those that have one)."""
        found = []
        for opt in opts:
            try:
                found.append(self.minimal(opt))
            except Unsupported:
                continue
        if not found:
            raise Unsupported("no option can be completed")
        return min(found, key=len)

    def _minimal_option(self, opt: dict[str, Any]) -> str | None:
        try:
            if "const" in opt:
                return _compact(opt["const"])
            if "enum" in opt:
                return min((_compact(v) for v in opt["enum"]), key=len)
            kind = opt.get("type")
            if kind == "null":
                return "null"
            if kind == "boolean":
                return "true"
            if kind in ("integer", "number"):
                return smallest_number(opt)
            if kind == "string":
                return _compact(string_example(opt))
            if kind == "array":
                count = int(opt.get("minItems", 0))
                if count > MAX_CHARS // 2:  # each item takes at least one character and a separator
                    raise Unsupported(f"minItems {count}")
                prefix = opt.get("prefixItems") or []
                items = [self.minimal(prefix[i] if i < len(prefix) else opt.get("items", True)) for i in range(count)]
                return "[" + ", ".join(items) + "]"
            if kind == "object":
                return "{" + ", ".join(f"{_compact(k)}: {self.minimal(s)}" for k, s in required_props(opt)) + "}"
        except Unsupported:
            return None
        return None


def required_props(opt: dict[str, Any], after: int = -1) -> list[tuple[str, Any]]:
    """Required keys with their schemas, in `properties` order, from declaration index `after` + 1."""
    props = list((opt.get("properties") or {}).items())
    required = set(opt.get("required") or [])
    return [(k, s) for i, (k, s) in enumerate(props) if i > after and k in required]


def string_example(opt: dict[str, Any]) -> str:
    if "pattern" in opt:
        raise Unsupported("pattern")
    if "format" in opt:
        example = FORMAT_EXAMPLES.get(opt["format"])
        if example is None:
            raise Unsupported(f"format {opt['format']}")
        return example
    return "a" * _bounded_length(int(opt.get("minLength", 0)))


def _bounded_length(n: int) -> int:
    if n > MAX_CHARS:
        raise Unsupported(f"a string of at least {n} characters")
    return n


def format_tail(opt: dict[str, Any], text: str) -> str | None:
    """The rest of a formatted string begun as `text` (None when unknown): fixed layouts (dates, times, uuids)
    continue with the example's characters at the same positions."""
    if "pattern" in opt:
        return None
    kind = opt.get("format")
    if kind == "email":
        if "@" not in text:
            return "@b.co"
        domain = text.split("@", 1)[1]
        return "co" if domain.endswith(".") else ("" if "." in domain else (".co" if domain else "b.co"))
    example = FORMAT_EXAMPLES.get(kind)
    if example is None:
        return None
    seconds = {"date-time": 19, "time": 8}.get(kind, len(example))  # where the fixed layout ends
    if len(text) < seconds or (kind in ("date", "uuid") and len(text) < len(example)):
        tail = example[len(text):]
        if kind in ("date", "date-time") and len(text) == 9 and text[8] == "3":
            tail = "0" + tail[1:]  # a day begun with 3 ends 30, which every month but February has
        return tail
    if kind not in ("date-time", "time"):
        return "" if len(text) >= len(example) else None
    zone = text[seconds:]
    if zone.startswith("."):
        fraction = len(zone) - len(zone[1:].lstrip("0123456789"))
        if fraction == len(zone):
            return ("0" if fraction == 1 else "") + "Z"
        zone = zone[fraction:]
    if zone[:1] in ("Z", "z"):
        return ""
    if zone[:1] in ("+", "-"):
        return "+00:00"[len(zone):]
    return "Z"  # right after the seconds


def smallest_number(opt: dict[str, Any], prefix: str = "") -> str | None:
    """The shortest number text starting with `prefix` within the option's bounds (None when none is short)."""
    tails = ("", "0", "1", ".1", "00", "10", ".01", "000", "0000", "00000", "000000")
    # A negative zero ("-0", "-0.0") is valid JSON, but the grammar takes it only as an integer: a bounded
    # number must not end on one.
    integer = opt.get("type") == "integer"
    candidates = [prefix + tail for tail in tails if integer or not _negative_zero(prefix + tail)]
    if not prefix:
        low = opt.get("minimum", opt.get("exclusiveMinimum"))
        if isinstance(low, (int, float)):
            candidates += [str(int(low) + d) for d in (0, 1)]
        high = opt.get("maximum", opt.get("exclusiveMaximum"))
        if isinstance(high, (int, float)):
            candidates += [str(int(high) - d) for d in (0, 1)]
    for text in sorted(candidates, key=len):
        if _number_ok(text, opt):
            return text
    return None


def _negative_zero(text: str) -> bool:
    return text.startswith("-") and text.strip("-0.eE+") == ""


def _number_ok(text: str, opt: dict[str, Any]) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if opt.get("type") == "integer" and not (isinstance(value, int) or float(value).is_integer()):
        return False
    checks = (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
              ("exclusiveMinimum", lambda b: value > b), ("exclusiveMaximum", lambda b: value < b))
    if not all(ok(opt[k]) for k, ok in checks if isinstance(opt.get(k), (int, float))):
        return False
    step = opt.get("multipleOf")
    return not step or abs(round(value / step) * step - value) < 1e-9


# ------------------------------------------------------------------------------------------------- cursor


@dataclass
class Frame:
    kind: str  # value | object | array | string | number | literal
    opts: list[dict[str, Any]]
    state: str = ""  # object: key, key-needed, colon, comma; array: first, comma, item
    buf: str = ""  # string / number / literal text so far (a string's without quotes, escapes raw)
    is_key: bool = False
    keys: list[str] = field(default_factory=list)  # object: keys written, in order
    count: int = 0  # array: items written
    escape: str = ""  # string: an escape in progress ("\\", "\\u12", ...)

    def copy(self) -> Frame:
        return Frame(self.kind, self.opts, self.state, self.buf, self.is_key, list(self.keys), self.count,
                     self.escape)


class JsonCursor:
    """The state of one partial JSON value under `schema` (see the module docstring)."""

    def __init__(self, schema: Any, schemas: Schemas | None = None) -> None:
        self.schemas = schemas or Schemas(schema if isinstance(schema, dict) else {})
        self.stack: list[Frame] = [Frame("value", self.schemas.options(schema))]
        self.space = False  # a separator's space is still due
        self.done = False

    def copy(self) -> JsonCursor:
        out = JsonCursor.__new__(JsonCursor)
        out.schemas, out.space, out.done = self.schemas, self.space, self.done
        out.stack = [f.copy() for f in self.stack]
        return out

    def signature(self) -> tuple:
        """Equal signatures have equal completions: the stack without the text of strings whose completion does
        not depend on it (no enum, const, format, pattern or unmet minLength), so a token inside such a string
        need not be priced again."""
        parts: list[Any] = [self.space, self.done]
        for f in self.stack:
            free = f.kind == "string" and not f.is_key and not f.escape and all(
                o.get("type") == "string" and not ({"enum", "const", "format", "pattern"} & o.keys())
                and int(o.get("minLength", 0)) <= len(f.buf) for o in f.opts)
            parts.append((f.kind, f.state, tuple(f.keys), f.count, f.is_key, "" if free else f.buf, f.escape,
                          id(f.opts[0]) if f.opts else 0, len(f.opts)))
        return tuple(parts)

    # -- reading ---------------------------------------------------------------------------------------

    def feed(self, text: str) -> bool:
        """Read `text`; True when it completed an object key already written in that object."""
        duplicate = False
        for ch in text:
            duplicate |= self._char(ch)
        return duplicate

    def _char(self, ch: str) -> bool:
        if self.done:
            return False
        top = self.stack[-1]
        if top.kind == "string":
            return self._string_char(top, ch)
        if top.kind == "number":
            if ch in "0123456789+-.eE":
                top.buf += ch
                return False
            self._pop()
            return self._char(ch)
        if top.kind == "literal":
            top.buf += ch
            if top.buf in LITERALS.values():
                self._pop()
            return False
        if ch == " ":
            self.space = False
            return False
        if top.kind == "value":
            self._start(top, ch)
        elif top.kind == "object":
            self._object_char(top, ch)
        elif top.kind == "array":
            if top.state in ("first", "item") and not (top.state == "first" and ch == "]"):
                self._push_value(self._item_options(top))
                return self._char(ch)
            if ch == "]":
                self._pop()
            elif ch == ",":
                top.state, self.space = "item", True
        return False

    def _string_char(self, top: Frame, ch: str) -> bool:
        if top.escape:
            top.escape += ch
            top.buf += ch
            if not (top.escape.startswith("\\u") and len(top.escape) < 6):
                top.escape = ""
            return False
        if ch == "\\":
            top.escape = ch
            top.buf += ch
            return False
        if ch != '"':
            top.buf += ch
            return False
        self.stack.pop()
        if not top.is_key:
            self._discriminate(json.loads('"' + top.buf + '"'))
            self._value_done()
            return False
        parent = self.stack[-1]
        key = json.loads('"' + top.buf + '"')
        duplicate = key in parent.keys
        parent.keys.append(key)
        parent.opts = [o for o in parent.opts if o.get("additionalProperties", True) is not False
                       or key in (o.get("properties") or {})] or parent.opts
        parent.state = "colon"
        return duplicate

    def _start(self, top: Frame, ch: str) -> None:
        wanted = {"{": ("object",), "[": ("array",), '"': ("string",), "t": ("boolean",), "f": ("boolean",),
                  "n": ("null",)}.get(ch, ("integer", "number"))
        opts = [o for o in top.opts if _kind(o) in wanted] or top.opts
        if ch == "{":
            self.stack[-1] = Frame("object", opts, state="key")
        elif ch == "[":
            self.stack[-1] = Frame("array", opts, state="first")
        elif ch == '"':
            self.stack[-1] = Frame("string", opts)
        elif ch in LITERALS:
            self.stack[-1] = Frame("literal", opts, buf=ch)
        else:
            self.stack[-1] = Frame("number", opts, buf=ch)

    def _object_char(self, top: Frame, ch: str) -> None:
        if ch == '"' and top.state in ("key", "key-needed"):
            self.stack.append(Frame("string", [], is_key=True))
        elif ch == "}" and top.state in ("key", "comma"):
            self._pop()
        elif ch == ":" and top.state == "colon":
            top.state, self.space = "value", True
            self._push_value(self._property_options(top, top.keys[-1]))
        elif ch == "," and top.state == "comma":
            top.state, self.space = "key-needed", True

    def _discriminate(self, value: Any) -> None:
        """A property's value just written rules out the object's options whose schema for it is a const or enum
        without that value (how anyOf branches of tool calls and tagged unions are told apart)."""
        parent = self.stack[-1] if self.stack else None
        if parent is None or parent.kind != "object" or not parent.keys:
            return
        key = parent.keys[-1]
        kept = []
        for opt in parent.opts:
            prop = self.schemas.resolve((opt.get("properties") or {}).get(key, {}))
            allowed = [prop["const"]] if "const" in prop else prop.get("enum")
            if allowed is None or value in allowed:
                kept.append(opt)
        parent.opts = kept or parent.opts

    def _push_value(self, opts: list[dict[str, Any]]) -> None:
        self.stack.append(Frame("value", opts))

    def _pop(self) -> None:
        self.stack.pop()
        self._value_done()

    def _value_done(self) -> None:
        if not self.stack:
            self.done = True
            return
        parent = self.stack[-1]
        if parent.kind == "object":
            parent.state = "comma"
        elif parent.kind == "array":
            parent.count += 1
            parent.state = "comma"

    def _property_options(self, frame: Frame, key: str) -> list[dict[str, Any]]:
        found = []
        for opt in frame.opts:
            props = opt.get("properties") or {}
            schema = props[key] if key in props else opt.get("additionalProperties", True)
            if schema is not False:
                found += self.schemas.options(schema)
        return found or self.schemas.options(True)

    def _item_options(self, frame: Frame) -> list[dict[str, Any]]:
        found = []
        for opt in frame.opts:
            prefix = opt.get("prefixItems") or []
            found += self.schemas.options(prefix[frame.count] if frame.count < len(prefix) else opt.get("items", True))
        return found or self.schemas.options(True)

    # -- completing ------------------------------------------------------------------------------------

    def completion(self) -> str:
        """The shortest text that completes the value validly (Unsupported when it cannot be built)."""
        cursor, out = self.copy(), []
        size = 0
        for _ in range(_MAX_PIECES):
            if cursor.done:
                return "".join(out)
            piece = cursor._next_piece()
            size += len(piece)
            if size > MAX_CHARS:
                break
            cursor.feed(piece)
            out.append(piece)
        raise Unsupported("the completion does not close")

    def _next_piece(self) -> str:
        top = self.stack[-1]
        lead = " " if self.space and top.kind in ("value", "object", "array") else ""
        if top.kind == "value":
            return lead + self.schemas.cheapest(top.opts)
        if top.kind == "string":
            return self._finish_string(top)
        if top.kind == "number":
            return self._finish_number(top)
        if top.kind == "literal":
            target = LITERALS[top.buf[0]]
            return target[len(top.buf):]
        if top.kind == "array":
            need = min(int(o.get("minItems", 0)) for o in top.opts) if top.opts else 0
            if top.state == "first":
                return "]" if need == 0 else self.schemas.cheapest(self._item_options(top))
            if top.state == "comma":
                return "]" if top.count >= need else ","
            return lead + self.schemas.cheapest(self._item_options(top))
        return self._finish_object(top, lead)

    def _finish_object(self, top: Frame, lead: str) -> str:
        if top.state == "colon":
            return ":"
        last = max((self._index(o, top.keys[-1]) for o in top.opts), default=-1) if top.keys else -1
        pending = self._next_required(top, last)
        if top.state == "comma":
            return "," if pending is not None else "}"
        if pending is not None:  # state key / key-needed: write the next required key
            return lead + _compact(pending)
        if top.state == "key":
            return "}"
        return lead + _compact(self._cheapest_key(top, last))  # after ", " some key must follow

    def _cheapest_key(self, top: Frame, last: int) -> str:
        best: tuple[int, str] | None = None
        for opt in top.opts:
            for i, (key, schema) in enumerate((opt.get("properties") or {}).items()):
                if i > last and key not in top.keys:
                    cost = len(key) + len(self.schemas.minimal(schema))
                    best = min(best or (cost, key), (cost, key))
            if opt.get("additionalProperties", True) is not False:
                key = next(k for k in ("a", "b", "c", "d", "e", "f", "g") if k not in top.keys)
                best = min(best or (99, key), (1, key))
        if best is None:
            raise Unsupported("no key may follow")
        return best[1]

    def _next_required(self, top: Frame, last: int) -> str | None:
        """The first required key of the object's first option declared after index `last` and not written."""
        if not top.opts:
            return None
        _, required = self.schemas.layout(top.opts[0])
        written = set(top.keys)
        start = bisect.bisect_right(required, last, key=lambda entry: entry[0])
        return next((key for _, key in required[start:] if key not in written), None)

    def _next_keys(self, frame: Frame) -> list[str]:
        """The declared keys that may come next: those after the last written one, up to the first required."""
        out = []
        for opt in frame.opts:
            last = self._index(opt, frame.keys[-1]) if frame.keys else -1
            required = set(opt.get("required") or [])
            for i, key in enumerate(opt.get("properties") or {}):
                if i > last and key not in frame.keys:
                    out.append(key)
                    if key in required:
                        break
        return out

    def _index(self, opt: dict[str, Any], key: str) -> int:
        return self.schemas.layout(opt)[0].get(key, -1)

    def _finish_string(self, top: Frame) -> str:
        if top.escape:
            tail = "n" if top.escape == "\\" else "0" * (6 - len(top.escape))
            return tail
        if top.is_key:
            keys = [k for k in self._next_keys(self.stack[-2]) if k.startswith(top.buf)]
            if keys and not any(o.get("additionalProperties", True) is not False for o in self.stack[-2].opts):
                return min(keys, key=len)[len(top.buf):] + '"'
            return '"'
        text = json.loads('"' + top.buf + '"') if top.buf else ""
        best: str | None = None
        for opt in top.opts:
            values = [opt["const"]] if "const" in opt else opt.get("enum")
            if values is not None:
                for v in values:
                    if isinstance(v, str) and v.startswith(text):
                        rest = _compact(v)[1 + len(top.buf):]
                        best = rest if best is None or len(rest) < len(best) else best
                continue
            if opt.get("type") != "string":
                continue
            if "format" in opt or "pattern" in opt:
                tail = format_tail(opt, text)
                if tail is None:
                    continue
                rest = tail + '"'
            else:
                rest = "a" * _bounded_length(max(0, int(opt.get("minLength", 0)) - len(text))) + '"'
            best = rest if best is None or len(rest) < len(best) else best
        if best is None:
            raise Unsupported("no completion for this string")
        return best

    def _finish_number(self, top: Frame) -> str:
        best = None
        for opt in top.opts:
            if "const" in opt or "enum" in opt:
                texts = [_compact(v) for v in ([opt["const"]] if "const" in opt else opt["enum"])]
                found = min((t for t in texts if t.startswith(top.buf)), key=len, default=None)
            else:
                found = smallest_number(opt, top.buf)
            if found is not None and (best is None or len(found) < len(best)):
                best = found
        if best is None:
            raise Unsupported(f"no completion for the number {top.buf!r}")
        if best == top.buf:  # complete as it is: close it, the parent says what comes next
            self._pop()
        return best[len(top.buf):]


def _kind(opt: dict[str, Any]) -> str:
    if "const" in opt or "enum" in opt:
        values = [opt["const"]] if "const" in opt else opt["enum"]
        first = values[0] if values else None
        return {str: "string", bool: "boolean", type(None): "null", dict: "object", list: "array"}.get(
            type(first), "number")
    return opt.get("type", "")
