"""Errors a client can cause, rendered in OpenAI's envelope: {"error": {message, type, param, code}}, or on
Anthropic's surfaces in Anthropic's: {"type": "error", "error": {type, message}, "request_id"}."""

from __future__ import annotations

import re

from starlette.responses import JSONResponse

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
          404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
          422: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}
# Anthropic names its error types by status; other 4xx are invalid_request_error, other 5xx api_error.
_ANTHROPIC_TYPES = {401: "authentication_error", 402: "billing_error", 403: "permission_error", 404: "not_found_error",
                    409: "conflict_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
                    529: "overloaded_error"}
ANTHROPIC_PREFIX = "/v1/messages"


def speaks_anthropic(path: str) -> bool:
    """Whether a request path belongs to an Anthropic surface, whose errors use Anthropic's envelope."""
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


def anthropic_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None, semantic: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = headers or {}
        # A well-formed request with a value the contract forbids; vendors that document 422 for these (Hoonify)
        # answer that instead of 400.
        self.semantic = semantic

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def renamed(self, renames: list[tuple[re.Pattern[str], str]]) -> APIError:
        """The same error with the shared chat code's field names said as another surface spells them."""
        for pattern, name in renames:
            self.message = pattern.sub(name, self.message)
            self.param = pattern.sub(name, self.param) if self.param else self.param
        return self

    def anthropic_body(self, request_id: str | None = None) -> dict:
        body: dict = {"type": "error", "error": {"type": anthropic_type(self.status), "message": self.message}}
        if request_id:
            body["request_id"] = request_id
        return body

    def response(self, *, anthropic: bool = False, request_id: str | None = None) -> JSONResponse:
        body = self.anthropic_body(request_id) if anthropic else self.body()
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None = None, code: str | None = None, semantic: bool = False) -> APIError:
    return APIError(400, message, param=param, code=code, semantic=semantic)


def model_not_found(model: str) -> APIError:
    return APIError(404, f"The model '{model}' does not exist or you do not have access to it.",
                    param="model", code="model_not_found")


def context_exceeded(limit: int, prompt: int, completion: int, param: str = "messages") -> APIError:
    return invalid(
        f"This model's maximum context length is {limit} tokens. However, you requested {prompt + completion} "
        f"tokens ({prompt} in the {param}, {completion} in the completion). Please reduce the length of the "
        f"{param} or completion.", param=param, code="context_length_exceeded")


def context_exceeded_at_least(limit: int, at_least: int, param: str = "messages") -> APIError:
    """A prompt refused by its size alone, before tokenizing it (seconds of work for megabytes of text)."""
    return invalid(
        f"This model's maximum context length is {limit} tokens. However, you requested at least {at_least} "
        f"tokens in the {param} alone. Please reduce the length of the {param}.", param=param,
        code="context_length_exceeded")


def internal(message: str = "The server had an error while processing your request.") -> APIError:
    return APIError(500, message, type="server_error")
