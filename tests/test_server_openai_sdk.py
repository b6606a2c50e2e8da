"""The official openai SDK against `wirecheck serve`, with nothing changed but base_url."""

from __future__ import annotations


import openai
import pytest

MODEL = "tiny"
HELLO = [{"role": "user", "content": "Echo: red fox"}]


def test_chat_create(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=24)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion" and r.model == MODEL
    choice = r.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.system_fingerprint and r.system_fingerprint.startswith("fp_")


def test_chat_stream_matches_non_stream_at_temperature_zero(client):
    kwargs = dict(model=MODEL, messages=HELLO, temperature=0, max_tokens=24)
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert all(c.usage is None for c in chunks), "usage only when stream_options.include_usage"


def test_chat_stream_include_usage_adds_one_trailing_usage_chunk(client):
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, stream=True,
                                                 stream_options={"include_usage": True}))
    *body, last = chunks
    assert last.choices == [] and last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.choices for c in body)


def test_chat_stream_helper_accumulates(client):
    with client.chat.completions.stream(model=MODEL, messages=HELLO, temperature=0, max_tokens=64) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
    assert final.choices[0].message.role == "assistant"  # a repeated role would read "assistantassistant"
    assert final.choices[0].message.content == text


def test_stop_string_from_own_greedy_output(client):
    base = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=32)
    text = base.choices[0].message.content
    if len(text) < 3:
        pytest.skip("greedy output too short to pick a stop string from")
    stop = text[1:3]
    r = client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=32, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == text[: text.index(stop)]
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=MODEL, messages=HELLO, temperature=0, max_tokens=32, stop=[stop], stream=True) if c.choices)
    assert streamed == r.choices[0].message.content


def test_n_choices_and_seed(client):
    kwargs = dict(model=MODEL, messages=HELLO, n=3, temperature=1.0, seed=7, max_tokens=12)
    a = client.chat.completions.create(**kwargs)
    b = client.chat.completions.create(**kwargs)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    for i in range(3):
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == i]
        assert mine[0].delta.role == "assistant"
        assert sum(1 for ch in mine if ch.finish_reason) == 1


def test_logprobs_shape(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, top_logprobs=3, max_tokens=6,
                                       temperature=0)
    content = r.choices[0].logprobs.content
    assert content and "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert t.logprob <= 0
        if not t.token.startswith("bytes:"):
            assert t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3
        assert [x.logprob for x in t.top_logprobs] == sorted((x.logprob for x in t.top_logprobs), reverse=True)
        assert t.top_logprobs[0].token == t.token  # greedy picks the most likely token


def test_max_completion_tokens_and_min_tokens(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=2, temperature=0)
    assert r.usage.completion_tokens <= 2
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10, temperature=0,
                                       extra_body={"min_tokens": 10})
    assert r.usage.completion_tokens == 10 and r.choices[0].finish_reason == "length"


def test_replayed_assistant_content_null_empty_or_absent(client):
    for assistant in ({"role": "assistant", "content": None}, {"role": "assistant", "content": ""},
                      {"role": "assistant"}):
        history = [{"role": "user", "content": "hi"}, assistant, {"role": "user", "content": "Echo: ok"}]
        if "content" not in assistant or assistant["content"] is None:
            assistant = {**assistant, "tool_calls": [{"id": "call_1", "type": "function",
                                                       "function": {"name": "f", "arguments": "{}"}}]}
            history = [history[0], assistant, {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                       history[2]]
        r = client.chat.completions.create(model=MODEL, messages=history, max_tokens=4)
        assert r.choices[0].message.role == "assistant"


def test_completions_create_and_stream(client, loose_client):
    r = client.completions.create(model=MODEL, prompt="The quick brown", max_tokens=8, temperature=0)
    assert r.object == "text_completion" and r.choices[0].finish_reason in ("stop", "length")
    # Streamed completion chunks carry finish_reason null until the end (as OpenAI's do), which the SDK's
    # strict Completion model rejects: stream through the SDK as users construct it.
    chunks = list(loose_client.completions.create(model=MODEL, prompt="The quick brown", max_tokens=8, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == r.usage.completion_tokens


def test_completions_many_prompts_and_logprobs(client):
    r = client.completions.create(model=MODEL, prompt=["a b", "c d"], n=2, max_tokens=3, logprobs=2, temperature=0)
    assert sorted(c.index for c in r.choices) == [0, 1, 2, 3]
    for c in r.choices:
        assert len(c.logprobs.tokens) == len(c.logprobs.token_logprobs) == len(c.logprobs.text_offset)
        assert all(len(t) <= 2 for t in c.logprobs.top_logprobs)
    echoed = client.completions.create(model=MODEL, prompt="Echo me", echo=True, max_tokens=2)
    assert echoed.choices[0].text.startswith("Echo me")
    # max_tokens 0 generates nothing (the engine must not sample the one token it samples before checking limits).
    only = client.completions.create(model=MODEL, prompt="Echo me", echo=True, max_tokens=0, n=2)
    assert [c.text for c in only.choices] == ["Echo me", "Echo me"] and only.usage.completion_tokens == 0
    assert {c.finish_reason for c in only.choices} == {"length"}


def test_embeddings_default_base64_path_equals_float(loose_client):
    default = loose_client.embeddings.create(model=MODEL, input=["hello world", "héllo 🌍"])
    floats = loose_client.embeddings.create(model=MODEL, input=["hello world", "héllo 🌍"], encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    for a, b in zip(default.data, floats.data):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert sum(x * x for x in b.embedding) == pytest.approx(1.0, abs=1e-4)
    assert floats.usage.total_tokens == floats.usage.prompt_tokens > 0


def test_embeddings_dimensions_and_token_inputs(client):
    r = client.embeddings.create(model=MODEL, input=[[5, 6, 7], [8]], encoding_format="float", dimensions=16)
    assert [len(d.embedding) for d in r.data] == [16, 16]
    assert sum(x * x for x in r.data[0].embedding) == pytest.approx(1.0, abs=1e-4)


def test_models_list_and_retrieve(client):
    listed = client.models.list()
    ids = [m.id for m in listed.data]
    assert MODEL in ids
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model"
    extra = model.model_extra or {}
    assert extra["context_window"] > 0 and "deprecation" in extra and extra["family"]
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


def test_bad_requests_raise_the_right_sdk_errors(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=HELLO, temperature=3)
    assert err.value.param == "temperature" and err.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=HELLO)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10**6)
    assert err.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=HELLO, stop=["a", "b", "c", "d", "e"])
    assert err.value.param == "stop"


def test_auth(keyed_server):
    good = openai.OpenAI(base_url=keyed_server.base_url + "/v1", api_key="sk-test-two", max_retries=0)
    assert good.models.list().data
    for key in ("wrong", "sk-test-one-but-longer"):
        bad = openai.OpenAI(base_url=keyed_server.base_url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as err:
            bad.chat.completions.create(model=MODEL, messages=HELLO)
        assert err.value.code == "invalid_api_key"
    assert "sk-test" not in keyed_server.logs() and "wrong" not in keyed_server.logs()
