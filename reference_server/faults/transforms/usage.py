"""Fault transforms, json stage, about usage: where it rides and when it is sent."""

from __future__ import annotations

from typing import Any

from .base import Context, _choices, is_usage_trailer, transform


@transform("json.usage-every-chunk")
def usage_every_chunk(obj: Any, ctx: Context) -> list[Any]:
    """Every streamed chunk that carries choices also carries a running `usage` (a gateway that copies usage
    onto each chunk, asked for or not); the usage trailer, if any, passes unchanged."""
    if not isinstance(obj, dict) or is_usage_trailer(obj) or not _choices(obj):
        return [obj]
    n = ctx.state["usage_chunks"] = ctx.state.get("usage_chunks", 0) + 1
    prompt = int(ctx.params.get("prompt_tokens", 9))
    return [{**obj, "usage": {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}}]
