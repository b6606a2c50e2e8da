"""Plain data passed between the surfaces and the engine (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GREEDY_BELOW = 1e-5  # temperatures under this sample greedily


@dataclass(frozen=True)
class SamplingParams:
    """What one request asks of the sampler; one instance per request, shared by its `n` choices."""

    max_tokens: int
    temperature: float = 1.0  # below GREEDY_BELOW (0 included) means greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 disables
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    min_tokens: int = 0
    stop: tuple[str, ...] = ()
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: Any = field(default=None, compare=False)  # grammar.Grammar: constrain every choice's output

    @property
    def greedy(self) -> bool:
        # Dividing logits by a tinier temperature overflows to inf (and NaN probabilities); vLLM draws the
        # same line.
        return self.temperature < GREEDY_BELOW


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]
    top: list[TopLogprob]


@dataclass
class ChoiceEvent:
    """Text newly released for one choice; `finish_reason` is set on the choice's last event."""

    index: int
    text: str = ""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    stop_sequence: str | None = None  # the stop string that ended the choice, when one did


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
