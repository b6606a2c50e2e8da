"""Fault transforms: pure functions that turn a correct exchange into one a real server got wrong.

Each transform is registered under a kind (``stage.name``) and belongs to one stage of an exchange:

* ``request``: ``fn(req, ctx) -> Req | Reply`` rewrites the request before it goes upstream, or answers it
  in place of the upstream (e.g. a 400 for a field the server does not know);
* ``response``: ``fn(reply, ctx) -> Reply`` rewrites a whole non-streamed response (status, headers, body);
* ``json``: ``fn(obj, ctx) -> list[obj]`` rewrites one JSON object: a non-streamed 2xx body (must give exactly
  one) or each JSON data event of a stream (may give none, one or several);
* ``stream``: ``fn(ctx) -> StreamTransform`` rewrites an event stream event by event (:mod:`spec.sse` items in,
  byte pieces out, each piece written on its own);
* ``transport``: behaviour in time (never answer, never end, drip bytes, buffer everything); the proxy does the
  waiting, the pure parts live here.

Nothing here does I/O or reads clocks, so every transform is unit-tested on bytes (tests/test_fault_transforms.py).
"""

from __future__ import annotations

# The stage modules register their transforms on import, in this order (request, response, json, stream,
# transport); everything public is re-exported so `transforms.X` keeps working for every importer.
from .base import (
    Context,
    Reply,
    Req,
    STAGES,
    StreamTransform,
    TRANSFORMS,
    Transform,
    dumps,
    error_fields,
    is_usage_trailer,
    stop_strings,
    transform,
)
from .request import (
    bad_request,
    drop_fields,
    ignore_auth,
    reject_assistant_content,
    reject_content_parts,
    reject_fields,
    reject_input_forms,
    reject_role,
    reject_unknown_fields,
    reply_instead,
    set_fields,
)
from .response import (
    error_fields_set,
    error_html,
    error_status,
    fabricate_model,
    fastapi_422,
    flat_error,
    response_content_type,
    success_status,
)
from .json_stage import (
    append_content,
    choice_index_offset,
    created_float,
    created_string,
    double_finish,
    drop_empty_delta,
    drop_null_choice_field,
    drop_role,
    embeddings_base64_float64,
    embeddings_base64_ignored,
    embeddings_reverse,
    finish_reason_value,
    model_field,
    model_ids,
    no_finish_reason,
    per_chunk_ids,
    role_every_chunk,
    set_choice_field,
    set_field,
    stop_leaked,
    usage_total,
)
from .stream import (
    Comments,
    ContentType,
    Crlf,
    DataKeepalive,
    DropDone,
    ErrorMidstream,
    JsonEvents,
    NameEvents,
    Split,
    UnterminatedLast,
    UsageInLastChoice,
    stream_fault,
)
from .transport import (
    Endless,
    buffer,
    drip,
    endless,
    hang,
    none,
)
from .apply import (
    apply_json,
    apply_stream,
    stream_transform,
)

__all__ = [
    "STAGES",
    "Req",
    "Reply",
    "Context",
    "StreamTransform",
    "Transform",
    "TRANSFORMS",
    "transform",
    "dumps",
    "is_usage_trailer",
    "error_fields",
    "stop_strings",
    "drop_fields",
    "set_fields",
    "bad_request",
    "reject_fields",
    "reject_unknown_fields",
    "reject_assistant_content",
    "reject_content_parts",
    "reject_role",
    "reject_input_forms",
    "reply_instead",
    "ignore_auth",
    "error_status",
    "response_content_type",
    "success_status",
    "fabricate_model",
    "fastapi_422",
    "flat_error",
    "error_fields_set",
    "error_html",
    "set_field",
    "created_float",
    "created_string",
    "per_chunk_ids",
    "finish_reason_value",
    "no_finish_reason",
    "double_finish",
    "drop_role",
    "role_every_chunk",
    "set_choice_field",
    "usage_total",
    "append_content",
    "drop_empty_delta",
    "choice_index_offset",
    "drop_null_choice_field",
    "stop_leaked",
    "embeddings_base64_float64",
    "embeddings_base64_ignored",
    "embeddings_reverse",
    "model_ids",
    "model_field",
    "JsonEvents",
    "stream_fault",
    "DropDone",
    "DataKeepalive",
    "UnterminatedLast",
    "ContentType",
    "UsageInLastChoice",
    "NameEvents",
    "ErrorMidstream",
    "Split",
    "Comments",
    "Crlf",
    "none",
    "hang",
    "drip",
    "buffer",
    "Endless",
    "endless",
    "stream_transform",
    "apply_stream",
    "apply_json",
]
