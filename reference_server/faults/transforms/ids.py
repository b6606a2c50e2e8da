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
