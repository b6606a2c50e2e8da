"""Chat content parts that carry media: `image_url` (vision) and `input_audio`, on the models a profile says take
them, and refused by the ones it says do not.

Model-agnostic: what a model sees in a red square or hears in a tone is its own business, so the checks judge
acceptance, the stream, the usage (the media's tokens are billed as prompt tokens) and the refusals, never the
text. Profiles name the models: `vision_models` / `audio_input_models` (or per-model `vision: true` /
CompactifAI's `supports_audio: true`); the others in `models` are text-only. The media are made here (a PNG,
a WAV tone), never downloaded, and travel as data: URLs / base64 so no target has to fetch anything.
"""

from __future__ import annotations

from typing import Any

import pytest

from .expect import (client_error_problems, expect_client_error_naming, expect_each, expect_object, expect_stream,
                     first_choice)
from .judge import assemble
from .media import BLUE, audio_part, image_part, png, tone_wav, user_with
from .registry import CheckFailed, check, fail
from .target import Target
from .wire import Exchange, Wire

MAX_TOKENS = 16
# Names a refusal may use for the part: its type, its field path (messages[0].content[1]...), or the medium.
IMAGE_NAMES = ("image_url", "image", "images", "vision", "content")
AUDIO_NAMES = ("input_audio", "audio", "content")


def _chat(wire: Wire, model: str, messages: list[dict[str, Any]], **fields: Any) -> Exchange:
    return wire.post("chat/completions", {"model": model, "messages": messages, "max_tokens": MAX_TOKENS, **fields})


def _model(models: tuple[str, ...], what: str) -> str:
    if not models:
        pytest.skip(f"not-claimed: the profile names no {what} model")
    return models[0]


def vision_model(target: Target) -> str:
    return _model(target.profile.vision_models, "vision")


def audio_model(target: Target) -> str:
    return _model(target.profile.audio_input_models, "audio-input")


def _answer(ex: Exchange, what: str) -> dict[str, Any]:
    body = expect_object(ex, what)
    message = first_choice(body, ex).get("message") or {}
    if not isinstance(message.get("content"), str):
        fail(f"{what}: the answer has no string message.content: {message!r}", ex.evidence())
    return body


def _prompt_tokens(body: dict[str, Any]) -> int | None:
    usage = body.get("usage")
    value = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _streamed(ex: Exchange, what: str) -> None:
    items = expect_stream(ex, what)
    choices = assemble(items)
    if not choices or not any(c.finish_reason for c in choices.values()):
        fail(f"{what}: the stream carries no choice with a finish_reason", ex.evidence())
    if not any(i.data == "[DONE]" for i in items):
        fail(f"{what}: the stream does not end with data: [DONE]", ex.evidence())


def _media_usage(wire: Wire, model: str, part: dict[str, Any], what: str) -> None:
    """The same request with and without the medium: its tokens must show in prompt_tokens."""
    text_only = _chat(wire, model, user_with(), temperature=0)
    with_media = _chat(wire, model, user_with(part), temperature=0)
    plain, rich = _prompt_tokens(_answer(text_only, "the text-only request")), _prompt_tokens(_answer(with_media, what))
    if plain is None or rich is None:
        pytest.skip("inconclusive: no usage.prompt_tokens to compare (chat.usage.arithmetic judges usage)")
    if rich <= plain:
        fail(f"{what} billed {rich} prompt tokens, the same request without it {plain}: the medium was not "
             f"counted, or never reached the model", with_media.evidence())


def _refusals(wire: Wire, target: Target, part: dict[str, Any], names: tuple[str, ...], kind: str) -> None:
    models = target.profile.text_only_models
    if not models:
        pytest.skip(f"not-claimed: the profile names no text-only model to refuse {kind} parts")
    found = []
    for model in models:
        ex = _chat(wire, model, user_with(part))
        problems: list[str] = []
        try:
            expect_client_error_naming(ex, names, f"an {kind} part sent to text-only model {model!r}",
                                       strict=target.strict)
        except CheckFailed as exc:  # every text-only model is tried, whatever the first one did
            problems = [str(exc)]
        found.append((ex, problems))
    expect_each(found)


# ------------------------------------------------------------------------------------------------ vision


@check("chat.vision.accepted", surface="chat", claims=("vision",),
       rationale="A user message whose content is text plus an image_url part with a data: URL is how every "
                 "vision client sends an image (OpenAI API reference, chat content parts; CompactifAI's "
                 "mistral-small-3-1 example); a vision model answers it with a chat.completion.",
       faults=("vision-parts-500",))
def test_vision_accepted(wire: Wire, target: Target) -> None:
    _answer(_chat(wire, vision_model(target), user_with(image_part())), "a text + image_url (PNG data: URL) request")


@check("chat.vision.stream", surface="chat", claims=("vision", "stream"),
       rationale="The same image request streamed is how chat UIs send it; it must stream like any other "
                 "(role chunk, deltas, a finish_reason, data: [DONE]).",
       faults=("vision-stream-500",))
def test_vision_stream(wire: Wire, target: Target) -> None:
    ex = _chat(wire, vision_model(target), user_with(image_part()), stream=True)
    _streamed(ex, "a streamed text + image_url request")


@check("chat.vision.detail", surface="chat", claims=("vision",),
       rationale="image_url.detail takes auto, low and high (OpenAI API reference; clients set low to save "
                 "tokens); each is accepted. Each is tried whatever the others got.",
       faults=("vision-detail-rejected",))
def test_vision_detail(wire: Wire, target: Target) -> None:
    found = []
    for detail in ("auto", "low", "high"):
        ex = _chat(wire, vision_model(target), user_with(image_part(detail=detail)))
        problems = [] if ex.status == 200 else [f"image_url.detail {detail!r} got {ex.describe()}"]
        found.append((ex, problems))
    expect_each(found)


@check("chat.vision.usage", surface="chat", claims=("vision",),
       rationale="An image is billed as prompt tokens (OpenAI's vision guide: image inputs are metered in "
                 "tokens); prompt_tokens with the image must exceed the same request without it. Equal counts "
                 "mean the image was dropped on the way or never counted, so budgets and bills are wrong.",
       faults=("vision-parts-dropped",))
def test_vision_usage(wire: Wire, target: Target) -> None:
    _media_usage(wire, vision_model(target), image_part(png(BLUE)), "a request with an image")


@check("chat.vision.refused", surface="chat", claims=("vision",),
       rationale="A model that takes no images refuses an image_url part with a 400 naming it (Hoonify: image_url "
                 "content blocks are rejected; OpenAI answers 400 for image input to a text-only model), rather "
                 "than answering as if it had looked, or failing with a 5xx.",
       faults=("vision-parts-dropped", "media-refusal-500"))
def test_vision_refused(wire: Wire, target: Target) -> None:
    _refusals(wire, target, image_part(), IMAGE_NAMES, "image_url")


@check("chat.vision.bad-image", surface="chat", claims=("vision",),
       rationale="A data: URL that holds no image (here: text bytes labelled image/png) is the client's mistake: "
                 "a 400 in the error envelope, never a 5xx (openai-python retries those) nor a 200 that pretends.",
       faults=("media-refusal-500",))
def test_vision_bad_image(wire: Wire, target: Target) -> None:
    ex = _chat(wire, vision_model(target), user_with(image_part(b"this is not a picture at all")))
    problems = client_error_problems(ex, "an image_url data: URL holding no image", strict=target.strict)
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))


# ------------------------------------------------------------------------------------------------ audio input


@check("chat.audio-input.accepted", surface="chat", claims=("audio-input",),
       rationale="An input_audio part ({data: base64, format: wav}) is how OpenAI's audio-input chat models and "
                 "CompactifAI's supports_audio models take sound (CompactifAI's nemotron-3-nano-omni example); "
                 "the model answers with a chat.completion. wav and mp3 are both OpenAI formats.",
       faults=("audio-input-500",))
def test_audio_input_accepted(wire: Wire, target: Target) -> None:
    _answer(_chat(wire, audio_model(target), user_with(audio_part())), "a text + input_audio (wav) request")


@check("chat.audio-input.stream", surface="chat", claims=("audio-input", "stream"),
       rationale="The same input_audio request streamed must stream like any other (a finish_reason, "
                 "data: [DONE]).",
       faults=("audio-input-stream-500",))
def test_audio_input_stream(wire: Wire, target: Target) -> None:
    _streamed(_chat(wire, audio_model(target), user_with(audio_part()), stream=True),
              "a streamed text + input_audio request")


@check("chat.audio-input.usage", surface="chat", claims=("audio-input",),
       rationale="Input audio is billed as prompt tokens (OpenAI reports it in prompt_tokens, detailed in "
                 "prompt_tokens_details.audio_tokens); prompt_tokens with the audio must exceed the same request "
                 "without it, or the audio was dropped or never counted.",
       faults=("audio-input-dropped",))
def test_audio_input_usage(wire: Wire, target: Target) -> None:
    _media_usage(wire, audio_model(target), audio_part(tone_wav(2.0, freqs=(330.0,))), "a request with audio")


@check("chat.audio-input.refused", surface="chat", claims=("audio-input",),
       rationale="A model whose /v1/models entry does not claim audio (CompactifAI: supports_audio false) refuses "
                 "an input_audio part with a 400 naming it, rather than answering as if it had listened.",
       faults=("audio-input-dropped", "media-refusal-500"))
def test_audio_input_refused(wire: Wire, target: Target) -> None:
    _refusals(wire, target, audio_part(), AUDIO_NAMES, "input_audio")


@check("chat.audio-input.bad-audio", surface="chat", claims=("audio-input",),
       rationale="input_audio whose data is not base64 audio, or whose format is not one OpenAI defines (wav, "
                 "mp3), is the client's mistake: a 400 in the error envelope, never a 5xx nor a 200. Each is "
                 "tried whatever the other got.",
       faults=("media-refusal-500",))
def test_audio_input_bad(wire: Wire, target: Target) -> None:
    cases = [("input_audio data that is not audio", audio_part(b"definitely not a wav file" * 8)),
             ("input_audio format 'aiff'", audio_part(fmt="aiff"))]
    found = []
    for what, part in cases:
        ex = _chat(wire, audio_model(target), user_with(part))
        found.append((ex, client_error_problems(ex, what, strict=target.strict)))
    expect_each(found)
