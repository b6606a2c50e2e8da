"""Token ids to bytes, and incremental UTF-8-safe decoding.

We decode from exact per-token bytes rather than re-decoding the whole sequence each step: it is O(1) per
token, gives logprobs their `bytes`, and a multi-byte character split across tokens is never emitted half.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from functools import lru_cache

from transformers import PreTrainedTokenizerBase


@lru_cache(maxsize=1)
def _byte_level_decoding() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable stand-in character -> byte value."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    mapping = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + extra)] = b
            extra += 1
    return mapping


def _decoder_kinds(tokenizer: PreTrainedTokenizerBase) -> set[str]:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        return set()
    spec = json.loads(backend.to_str()).get("decoder") or {}
    kinds = {spec.get("type", "")}
    for sub in spec.get("decoders", []) or []:
        kinds.add(sub.get("type", ""))
    return kinds


def build_token_bytes(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> list[bytes]:
    """Exact bytes each token id contributes to the output text (special tokens contribute nothing)."""
    kinds = _decoder_kinds(tokenizer)
    byte_level = "ByteLevel" in kinds
    metaspace = "Metaspace" in kinds or "Replace" in kinds
    byte_map = _byte_level_decoding()
    special = set(tokenizer.all_special_ids)
    added = {i: t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    table: list[bytes] = []
    pieces = tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(tokenizer)))))
    for token_id, piece in enumerate(pieces):
        if token_id in special or piece is None:
            table.append(b"")
        elif token_id in added:
            table.append(added[token_id].encode("utf-8"))
        elif byte_level:
            table.append(bytes(byte_map.get(ch, 0) for ch in piece) if all(ch in byte_map for ch in piece)
                         else piece.encode("utf-8"))
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            table.append(bytes([int(piece[3:5], 16)]))  # SentencePiece byte fallback
        elif metaspace:
            table.append(piece.replace("\u2581", " ").encode("utf-8"))
        else:
            table.append(tokenizer.decode([token_id]).encode("utf-8"))
    # Models often pad the embedding matrix past the tokenizer's vocabulary; those ids decode to nothing.
    table.extend(b"" for _ in range(vocab_size - len(table)))
    return table


def token_text(raw: bytes) -> str:
    """The `token` string OpenAI reports for a token: its text, or `bytes:\\xNN...` when not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


class IncrementalText:
    """Accumulates token bytes; `text` only ever holds complete characters."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""

    def push(self, raw: bytes) -> str:
        piece = self._decoder.decode(raw)
        self.text += piece
        return piece

    def flush(self) -> str:
        """End of output: an incomplete trailing character becomes U+FFFD rather than vanishing."""
        piece = self._decoder.decode(b"", final=True)
        self.text += piece
        return piece


def decode_ids(table: Sequence[bytes], ids: Sequence[int]) -> str:
    return b"".join(table[i] for i in ids).decode("utf-8", errors="replace")
