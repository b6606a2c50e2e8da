"""wirecheck's wire contract: the OpenAPI document, its schema loader and the SSE codec.

    >>> import spec
    >>> spec.first_error("CreateChatCompletionRequest", {"model": "m", "messages": [], "temperature": 3})
    SpecError(param='messages', message="Invalid value for 'messages': the array must not be empty.")

``spec.sse`` holds the byte-level server-sent-events reader and writer.
"""

from .loader import (
    DOCUMENT_URI,
    SpecError,
    bounds_error,
    document,
    errors,
    first_error,
    format_param,
    is_valid,
    json_pointer,
    names,
    schema,
)

__all__ = [
    "DOCUMENT_URI",
    "SpecError",
    "bounds_error",
    "document",
    "errors",
    "first_error",
    "format_param",
    "is_valid",
    "json_pointer",
    "names",
    "schema",
]
