"""Hontoni's Tool Integrations (seed 002), as its users configure them: the settings the document gives each tool,
driven through the official SDK those tools use."""

from __future__ import annotations

import pytest

from .registry import check, fail
from .test_sdk_anthropic import make_client

anthropic = pytest.importorskip("anthropic")


@check("hontoni.clients.claude-code-base-url", surface="messages", claims=("hontoni.claude-code",),
       faults=("hontoni-claude-code-base-url-404",),
       rationale="Seed 002 configures Claude Code with ANTHROPIC_BASE_URL=https://api.hontoni.vn/v1 (and "
                 "apiBaseUrl the same). The Anthropic SDK Claude Code is built on appends /v1/messages to its base "
                 "URL, so every request of a Claude Code set up as documented goes to /v1/v1/messages: it must be "
                 "answered as /v1/messages is.")
def test_claude_code_base_url(wire, target) -> None:
    documented = target.profile.vendor.get("anthropic_base_url")
    if not documented or not target.base_url.endswith(documented):
        pytest.skip(f"not-claimed: the target's base URL {target.base_url} is not the documented Anthropic base")
    client = make_client(target, base_url=target.base_url)  # as documented: the base itself, /v1 included
    try:
        reply = client.messages.create(model=target.model, max_tokens=8,
                                       messages=[{"role": "user", "content": "Say hi."}])
    except anthropic.APIStatusError as exc:
        fail(f"the Anthropic SDK with base_url {target.base_url} (as the document tells Claude Code users) got "
             f"HTTP {exc.status_code} from {exc.response.request.url.path}: {exc.message[:200]}")
    except anthropic.APIResponseValidationError as exc:
        fail(f"the Anthropic SDK with base_url {target.base_url} could not read the answer: {exc}")
    except anthropic.APIConnectionError as exc:
        fail(f"the Anthropic SDK with base_url {target.base_url} could not complete a request: {exc}")
    finally:
        client.close()
    if reply.type != "message" or not reply.content:
        fail(f"the Anthropic SDK with base_url {target.base_url} got a {reply.type!r} with content {reply.content!r}")
