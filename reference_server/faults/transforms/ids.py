"""Fault transforms, json stage, about ids: the forms a gateway mints and the ones it keeps consistent."""

from __future__ import annotations

import uuid
from typing import Any

from .base import Context, transform

# The id forms OpenAI and Anthropic mint (spec: x-wirecheck-strict-pattern). A gateway that mints its own ids
# replaces exactly these.
VENDOR_PREFIXES = ("chatcmpl-", "cmpl-", "call_", "resp_", "msg_", "fc_", "rs_", "toolu_")
ID_KEYS = ("id", "call_id", "item_id")
_NAMESPACE = uuid.UUID("5f0c1d9e-2b7a-4c1e-9e61-77a3a0c2d4b1")


def opaque(value: str) -> str:
    """A UUID standing for `value`: the same value always gives the same UUID, so a stream's chunks, a call and
    its streamed fragments keep agreeing with each other (what transformers serve and many gateways send)."""
    return str(uuid.uuid5(_NAMESPACE, value))


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (opaque(v) if k in ID_KEYS and isinstance(v, str) and v.startswith(VENDOR_PREFIXES)
                    else _rewrite(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


@transform("json.opaque-ids")
def opaque_ids(obj: Any, ctx: Context) -> list[Any]:
    """Every vendor-form id (`chatcmpl-`, `call_`, `resp_`, `msg_`, `toolu_`, ...), at any depth, becomes a UUID."""
    return [_rewrite(obj)]


@transform("json.messages-stream-tool-ids")
def messages_stream_tool_ids(obj: Any, ctx: Context) -> list[Any]:
    """Streamed tool_use blocks get ids of another kind than the non-streamed path's (`call:0:toolu_...`, a
    stream translator's own scheme), which the server's replay of the next turn refuses."""
    block = obj.get("content_block") if isinstance(obj, dict) and obj.get("type") == "content_block_start" else None
    if not isinstance(block, dict) or block.get("type") != "tool_use":
        return [obj]
    return [{**obj, "content_block": {**block, "id": f"call:{obj.get('index', 0)}:{block.get('id')}"}}]
