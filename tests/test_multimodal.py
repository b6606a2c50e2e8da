"""Images and audio in chat reach the model: `tiny-omni` (the tiny LM with the tiny-omni media adapter) against the
real server over loopback HTTP with the official openai SDK, in both engines; refusals and bad media are 400s
naming the part; batching a media prompt with text prompts changes no row's logits."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
import openai
import pytest
import torch
from PIL import Image, ImageDraw

from wirecheck.reference_server.engine.batch import Batch
from wirecheck.reference_server.engine.loader import load_model
from wirecheck.reference_server.engine.media import (
    TINY_OMNI_DIR, Media, MediaAdapter, adapter_for, audio_tokens, decode_image, log_mel,
)
from wirecheck.reference_server.prompts import media_prompt, placeholder_id
from wirecheck.suites.serve import running

OMNI = "tiny-omni"
RED, BLUE = (215, 35, 35), (40, 70, 215)


def png(colour: tuple[int, int, int], shape: str = "circle", size: int = 96) -> str:
    """A data: URL of one coloured shape on white, as the adapter was trained on."""
    image = Image.new("RGB", (size, size), (245, 245, 245))
    box = (size * 0.2, size * 0.2, size * 0.8, size * 0.8)
    draw = ImageDraw.Draw(image)
    draw.ellipse(box, fill=colour) if shape == "circle" else draw.rectangle(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def tone(freq: float, beeps: int = 1, seconds: float = 2.0) -> tuple[np.ndarray, str]:
    """16 kHz samples of one long tone or a few short beeps, and the same as base64 WAV."""
    rate = 16_000
    t = np.arange(int(rate * seconds)) / rate
    x = np.zeros_like(t)
    spans = [(0.3, 1.3)] if beeps == 1 else [(0.3 + 0.3 * k, 0.42 + 0.3 * k) for k in range(beeps)]
    for a, b in spans:
        i, j = int(a * rate), int(b * rate)
        x[i:j] = 0.5 * np.sin(2 * np.pi * freq * t[i:j])
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((x * 32767).astype(np.int16).tobytes())
    return x.astype(np.float32), base64.b64encode(buffer.getvalue()).decode()


def image_part(url: str, detail: str | None = "low") -> dict:
    return {"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}}


def audio_part(data: str, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def ask(text: str, *parts: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


def answer(client: openai.OpenAI, messages: list[dict], model: str = OMNI, **kwargs):
    return client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12, **kwargs)


@pytest.fixture(scope="module")
def thread_client():
    with running("--engine", "thread") as srv:
        yield openai.OpenAI(base_url=srv.base_url + "/v1", api_key="unused", max_retries=0,
                            _strict_response_validation=True)


# --- over HTTP, with the openai SDK -----------------------------------------------------------------------------


def test_models_list_flags_audio_exactly_for_tiny_omni(client):
    flags = {m.id: (m.model_extra or {}).get("supports_audio") for m in client.models.list().data}
    assert flags == {"tiny": False, OMNI: True}


def test_the_answer_follows_the_image_and_usage_counts_its_tokens(client):
    question = "What is in this image?"
    red = answer(client, ask(question, image_part(png(RED))))
    blue = answer(client, ask(question, image_part(png(BLUE))))
    assert "red" in red.choices[0].message.content and "blue" in blue.choices[0].message.content
    high = answer(client, ask(question, image_part(png(BLUE), "high")))
    assert "blue" in high.choices[0].message.content
    text_only = answer(client, ask(question)).usage.prompt_tokens
    # detail low: 64x64 px, 16 tokens; high: 128x128 px, 64 tokens; auto on a 96 px image: high.
    assert red.usage.prompt_tokens == blue.usage.prompt_tokens == text_only + 16
    assert high.usage.prompt_tokens == text_only + 64
    assert answer(client, ask(question, image_part(png(RED), None))).usage.prompt_tokens == text_only + 64


def test_the_answer_follows_the_audio_and_usage_counts_its_tokens(client):
    samples, low = tone(250.0)
    _, high = tone(2200.0)
    question = "What do you hear?"
    got_low = answer(client, ask(question, audio_part(low)))
    got_high = answer(client, ask(question, audio_part(high)))
    assert "low" in got_low.choices[0].message.content and "high" in got_high.choices[0].message.content
    text_only = answer(client, ask(question)).usage.prompt_tokens
    assert got_low.usage.prompt_tokens == text_only + audio_tokens(len(samples) / 16_000) == text_only + 26


def test_streaming_carries_the_same_answer_and_usage(client):
    messages = ask("What is in this image?", image_part(png(RED)))
    whole = answer(client, messages)
    chunks = list(answer(client, messages, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_a_text_only_model_refuses_media_naming_the_part(client):
    for part, kind in ((image_part(png(RED)), "image"), (audio_part(tone(300.0)[1]), "audio")):
        with pytest.raises(openai.BadRequestError) as err:
            answer(client, ask("What is this?", part), model="tiny")
        assert err.value.param == "messages[0].content[1].type"
        assert f"model 'tiny' does not accept {kind} input" in err.value.message


@pytest.mark.parametrize("part, param", [
    (audio_part("***not base64***"), "messages[0].content[1].input_audio.data"),
    (audio_part(base64.b64encode(b"RIFF not really a wav file").decode()), "messages[0].content[1].input_audio.data"),
    (image_part("data:image/png;base64,@@@@"), "messages[0].content[1].image_url.url"),
    (image_part("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n garbage").decode()),
     "messages[0].content[1].image_url.url"),
])
def test_bad_media_is_a_400_naming_the_part(client, part, param):
    with pytest.raises(openai.BadRequestError) as err:
        answer(client, ask("What is this?", part))
    assert err.value.param == param


def test_the_thread_engine_gives_the_same_answers(client, thread_client):
    for messages in (ask("What is in this image?", image_part(png(BLUE, "square"))),
                     ask("What do you hear?", audio_part(tone(2200.0, beeps=3)[1]))):
        ours, theirs = answer(thread_client, messages), answer(client, messages)
        assert ours.choices[0].message.content == theirs.choices[0].message.content
        assert ours.usage == theirs.usage


# --- in-process: prompts and the batch --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    lm = load_model("tiny", device="cpu")
    path = adapter_for(lm.path, lm.hidden_size)
    assert path == str(TINY_OMNI_DIR), "tiny-omni was trained against other tiny weights: rebuild it"
    return lm, MediaAdapter(path, lm.device, lm.dtype)


def test_media_prompt_places_placeholder_runs_and_no_text_forges_one(tiny):
    lm, _ = tiny
    image = decode_image(base64.b64decode(png(RED).split(",", 1)[1]), "low", "x")
    messages = ask("<|media-0000000000000000-0|> is not a marker", image_part("data:"))
    prompt = media_prompt(lm.tokenizer, messages, None, {(0, 1): image}, placeholder_id(lm))
    [(offset, media)] = prompt.media
    assert media is image and prompt.ids[offset:offset + 16] == [placeholder_id(lm)] * 16
    assert prompt.ids.count(placeholder_id(lm)) == 16
    assert "is not a marker" in lm.tokenizer.decode(prompt.ids[:offset])


def test_a_media_prompt_batched_with_text_prompts_keeps_every_rows_logits(tiny):
    lm, adapter = tiny
    audio = Media("audio", log_mel(tone(2200.0)[0]))
    with_media = media_prompt(lm.tokenizer, ask("What do you hear?", audio_part("")), None, {(0, 1): audio},
                              placeholder_id(lm))
    spans = [(offset, adapter.embed(item)) for offset, item in with_media.media]
    short, long_ = lm.tokenizer.encode("Hi"), lm.tokenizer.encode("Echo: a much longer text prompt than the other " * 3)
    jobs = [(short, "a", 1), (with_media.ids, "b", 2), (long_, "c", 1)]
    with torch.inference_mode():
        _, together = Batch.prefill_many(lm.model, jobs, placeholder_id(lm), [[], spans, []])
        alone = [Batch.prefill(lm.model, p, j, n, media)[1] for (p, j, n), media in zip(jobs, [[], spans, []])]
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-4, rtol=1e-4)
    # And the media really is in there: the same ids without it predict something else.
    with torch.inference_mode():
        _, blind = Batch.prefill(lm.model, with_media.ids, "b", 1)
    assert not torch.allclose(blind[0], alone[1][0], atol=1e-3)


# --- CompactifAI's ids ------------------------------------------------------------------------------------------


def test_compactifai_serves_its_vision_and_audio_models():
    key = "cai-wirecheck-example"
    with running("--profile", "compactifai", "--engine", "thread") as srv:
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key=key, max_retries=0)
        flags = {m.id: (m.model_extra or {}).get("supports_audio") for m in client.models.list().data}
        assert [m for m, audio in flags.items() if audio] == ["nemotron-3-nano-omni"]
        heard = answer(client, ask("What is this audio file about?", audio_part(tone(2200.0)[1])),
                       model="nemotron-3-nano-omni")
        seen = answer(client, ask("What is in this image?", image_part(png(RED))), model="mistral-small-3-1")
        assert "high" in heard.choices[0].message.content and "red" in seen.choices[0].message.content
        for model, part, kind in (("mistral-small-3-1", audio_part(tone(300.0)[1]), "audio"),
                                  ("cai-llama-3-1-8b-slim", image_part(png(RED)), "image")):
            with pytest.raises(openai.BadRequestError) as err:
                answer(client, ask("What is this?", part), model=model)
            assert f"model '{model}' does not accept {kind} input" in err.value.message
