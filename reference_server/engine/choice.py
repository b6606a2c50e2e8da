"""One choice's output: decoding, stop strings, hold-back, limits and finish reason. Pure Python."""

from __future__ import annotations

from collections.abc import Sequence

from .detok import IncrementalText
from .stops import find_stop, releasable
from .types import ChoiceEvent, TokenLogprob


class ChoiceOutput:
    """Turns sampled token ids into released text.

    Text is released only when it can no longer be part of a stop string, so a stop string that spans
    tokens never reaches the client; it is excluded from the output (OpenAI semantics).
    """

    def __init__(
        self,
        index: int,
        token_bytes: Sequence[bytes],
        eos_ids: frozenset[int],
        max_tokens: int,
        stop: Sequence[str] = (),
        min_tokens: int = 0,
    ) -> None:
        self.index = index
        self._table = token_bytes
        self._eos = eos_ids
        self._max = max_tokens
        self._min = min_tokens
        self._stop = tuple(s for s in stop if s)
        self._text = IncrementalText()
        self._released = 0
        # Logprob entries wait until their token's text is released; each keeps where its text starts.
        self._pending: list[tuple[int, TokenLogprob]] = []
        self.tokens: list[int] = []
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        return self._text.text[: self._released] if self.finish_reason else self._text.text

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def push(self, token_id: int, logprob: TokenLogprob | None = None) -> ChoiceEvent:
        assert self.finish_reason is None, "push after finish"
        self.tokens.append(token_id)
        if token_id in self._eos:
            return self._finish("stop", len(self._flush()))
        start = len(self._text.text)
        self._text.push(self._table[token_id])
        if logprob is not None:
            self._pending.append((start, logprob))
        text = self._text.text
        if self._stop and len(self.tokens) >= self._min:
            hit = find_stop(text, self._stop, self._released)
            if hit is not None:
                event = self._finish("stop", hit)
                event.stop_sequence = next(s for s in self._stop if text.startswith(s, hit))
                return event
        if len(self.tokens) >= self._max:
            return self._finish("length", len(self._flush()))
        upto = releasable(text, self._stop, self._released) if self._stop else len(text)
        return self._release(upto)

    def _flush(self) -> str:
        self._text.flush()
        return self._text.text

    def _finish(self, reason: str, upto: int) -> ChoiceEvent:
        event = self._release(upto, final=True)
        self.finish_reason = event.finish_reason = reason
        return event

    def _release(self, upto: int, final: bool = False) -> ChoiceEvent:
        text = self._text.text[self._released : upto]
        self._released = max(self._released, upto)
        if final:
            # Tokens that only produced the (excluded) stop string carry no entry.
            ready = [lp for start, lp in self._pending if start < upto]
            self._pending = []
        else:
            ready = self._take_released()
        return ChoiceEvent(index=self.index, text=text, logprobs=ready)

    def _take_released(self) -> list[TokenLogprob]:
        """Entries whose token text lies wholly inside the released prefix."""
        out: list[TokenLogprob] = []
        ends = [start for start, _ in self._pending[1:]] + [len(self._text.text)]
        keep: list[tuple[int, TokenLogprob]] = []
        for (start, lp), end in zip(self._pending, ends):
            if end <= self._released and not keep:
                out.append(lp)
            else:
                keep.append((start, lp))
        self._pending = keep
        return out
