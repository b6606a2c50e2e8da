"""Request-to-engine translation shared by chat and completions: sampling parameters, limits, ids."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import replace
from collections.abc import Callable
from typing import Any

from ..engine.grammar import Grammar
from ..engine.loader import LoadedModel
from ..engine.types import SamplingParams
from ..engine.worker import Engine, GenerationStream
from ..errors import context_exceeded, invalid, model_not_found

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 29) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def now() -> int:
    return int(time.time())


def vendor_fields(request: Any) -> dict[str, Any]:
    """Fields an emulated vendor adds to this request's response objects (Hoonify's `pool`, a per-quantization
    system_fingerprint); set by the vendor layer, empty otherwise."""
    return dict((request.scope.get("state") or {}).get("response_fields") or {})


def report_usage(request: Any, usage: Callable[[], dict[str, int]]) -> None:
    """Tell a vendor layer in front how many tokens this request used, whatever the response itself reports (an
    OpenAI stream carries usage only with include_usage; a cut-off stream none): it bills by this."""
    state = request.scope.get("state")
    if isinstance(state, dict):
        state["usage"] = usage


def resolve_model(models: dict[str, LoadedModel], body: dict[str, Any]) -> LoadedModel:
    name = body.get("model")
    if name not in models:
        raise model_not_found(str(name))
    return models[name]


def split_inputs(value: Any, param: str) -> list[Any]:
    """OpenAI's four input forms, string | [string] | [int] | [[int]], as one item per text or token list."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif value and all(is_token(x) for x in value):
        items = [value]
    else:
        items = list(value)
    if not items:
        raise invalid(f"{param} must not be an empty list.", param=param)
    return items


def is_token(value: Any) -> bool:
    """An integer, as JSON Schema counts them: 7 and 7.0 both are."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def check_token_ids(lm: LoadedModel, ids: list[int], where: str, param: str) -> list[int]:
    ids = [int(t) for t in ids]  # 7.0 is a valid integer to JSON Schema
    if not ids:
        raise invalid(f"{where} is an empty token list.", param=param)
    bad = [t for t in ids if not 0 <= t < lm.vocab_size]
    if bad:
        raise invalid(f"{where} holds token id {bad[0]}, outside this model's vocabulary (0..{lm.vocab_size - 1}).",
                      param=param)
    return ids


def stop_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(s for s in items if s)  # an empty stop string can never end anything


def logit_bias(value: Any, vocab: int) -> dict[int, float]:
    bias: dict[int, float] = {}
    for key, amount in (value or {}).items():
        try:
            token = int(key)
        except ValueError:
            raise invalid(f"logit_bias keys must be token ids; got {key!r}.", param="logit_bias") from None
        if not 0 <= token < vocab:
            raise invalid(f"logit_bias token id {token} is outside this model's vocabulary (0..{vocab - 1}).",
                          param="logit_bias")
        bias[token] = float(amount)
    return bias


def sampling_params(body: dict[str, Any], lm: LoadedModel, prompt_tokens: int, *, max_tokens: int | None,
                    max_param: str, logprobs: bool, top_logprobs: int, prompt_param: str,
                    limit: int | None) -> SamplingParams:
    """Shared rules; `max_tokens` is what the surface read from whichever field it honours."""
    room = lm.context_window - prompt_tokens
    if max_tokens is not None:
        max_tokens = int(max_tokens)  # integral floats (16.0) are valid integers to JSON Schema
    if max_tokens is None:
        if room <= 0:
            raise context_exceeded(lm.context_window, prompt_tokens, 1, prompt_param)
        max_tokens = room if limit is None else min(room, limit)
    elif limit is not None and max_tokens > limit:
        raise invalid(f"{max_param} is {max_tokens}; this server allows at most {limit}.", param=max_param)
    elif max_tokens > room:
        raise context_exceeded(lm.context_window, prompt_tokens, max_tokens, prompt_param)
    min_tokens = int(body.get("min_tokens") or 0)
    if min_tokens > max_tokens:
        raise invalid(f"min_tokens ({min_tokens}) must not exceed {max_param} ({max_tokens}).", param="min_tokens")
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if temperature is None else float(temperature),
        top_p=1.0 if top_p is None else float(top_p),
        top_k=int(body.get("top_k") or 0),
        seed=None if body.get("seed") is None else int(body["seed"]),
        frequency_penalty=float(body.get("frequency_penalty") or 0.0),
        presence_penalty=float(body.get("presence_penalty") or 0.0),
        logit_bias=logit_bias(body.get("logit_bias"), lm.vocab_size),
        min_tokens=min_tokens,
        stop=stop_list(body.get("stop")),
        n=int(body.get("n") or 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
    )


# Thinking / reasoning is the model's own sampled text before its answer (the tiny model does not reason, so it is
# short); a budget or effort bounds it, up to this many tokens.
THINKING_CAP = 256


def generate_with_thinking(engine: Engine, prompt: list[int], params: SamplingParams, grammar: Grammar | None,
                           think: int) -> list[GenerationStream]:
    """[thinking, answer] streams (just [answer] when think is 0), sampled side by side so the pair stays within
    params.max_tokens: thinking takes `think` of it, unconstrained and without stop strings."""
    streams = []
    if think > 0:
        streams.append(engine.generate(prompt, replace(params, max_tokens=think, stop=(), min_tokens=0)))
        params = replace(params, max_tokens=params.max_tokens - think)
    return [*streams, engine.generate(prompt, replace(params, grammar=grammar))]


def check_quantization(body: dict[str, Any], lm: LoadedModel, offered: list[str]) -> None:
    """Hoonify's `quantization` picks a weights variant; serving another one silently would mislead."""
    wanted = body.get("quantization")
    if wanted is not None and wanted not in offered:
        raise invalid(f"Model '{lm.id}' is not served in quantization '{wanted}'; it offers {', '.join(offered)}.",
                      param="quantization")


def check_stream_options(body: dict[str, Any]) -> bool:
    """include_usage, refusing stream_options on a non-streaming request as OpenAI does."""
    options = body.get("stream_options")
    if options is not None and not body.get("stream"):
        raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                      param="stream_options")
    return bool((options or {}).get("include_usage"))
