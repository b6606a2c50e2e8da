"""Speech to text, POST /v1/audio/transcriptions: the multipart upload, the answer formats, the errors, and the
official openai SDK's `audio.transcriptions.create`.

Model-agnostic: what the target hears in a test tone is its own business, so the checks judge the answer's
shape, its content type and its errors, never the text. The audio is generated here (a tone, as a WAV file).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from .expect import client_error_problems, expect_client_error_naming, expect_each
from .judge import schema_problems
from .media import tone_wav
from .registry import check, fail
from .target import Target
from .wire import Exchange, Wire

PATH = "audio/transcriptions"
FORMATS = {"text": "text/plain", "srt": "text/plain", "vtt": "text/plain", "verbose_json": "application/json"}


def multipart(fields: dict[str, Any], file: tuple[str, bytes, str] | None) -> tuple[bytes, str]:
    """A multipart/form-data body as the openai SDK sends one: text fields, `name[]` for arrays, one file part."""
    boundary = "wirecheck-" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            key = f"{name}[]" if isinstance(value, list) else name
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{item}\r\n'.encode())
    if file is not None:
        filename, data, media = file
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     f"Content-Type: {media}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def audio_model(target: Target) -> str:
    return target.profile.audio_models[0] if target.profile.audio_models else "whisper-1"


def transcribe(wire: Wire, target: Target, file: tuple[str, bytes, str] | None = None, **fields: Any) -> Exchange:
    fields = {"model": audio_model(target), **fields}
    body, content_type = multipart(fields, ("speech.wav", tone_wav(), "audio/wav") if file is None else file)
    return wire.request("POST", PATH, content=body, headers={"Content-Type": content_type})


@pytest.fixture(scope="module")
def plain(wire: Wire, target: Target) -> Exchange:
    return transcribe(wire, target, language="en", temperature="0")


@check("audio.transcriptions.json", surface="audio",
       rationale="A transcription in the default format is one application/json object with a string `text` (and "
                 "usage {type: duration, seconds} where present): openai-python parses it into Transcription, and "
                 "clients read .text (OpenAI API reference, audio/createTranscription).",
       faults=("transcription-text-missing",))
def test_transcription_json(plain: Exchange, target: Target) -> None:
    if plain.error or plain.timed_out or plain.status != 200:
        fail(f"a transcription of a WAV file got {plain.describe()}", plain.evidence())
    if not plain.content_type.lower().startswith("application/json"):
        fail(f"the default (json) transcription came as {plain.content_type!r}, not application/json",
             plain.evidence())
    try:
        body = json.loads(plain.body)
    except ValueError:
        fail(f"the json transcription is not JSON: {plain.body[:120]!r}", plain.evidence())
    problems = schema_problems("CreateTranscriptionResponseJson", body, strict=target.strict)
    if problems:
        fail("; ".join(problems), plain.evidence(*problems))


def format_problems(fmt: str, ex: Exchange) -> list[str]:
    if ex.status != 200:
        return [f"response_format {fmt} got {ex.describe()}"]
    media = FORMATS[fmt]
    if not ex.content_type.lower().startswith(media):
        return [f"response_format {fmt} came as {ex.content_type!r}, not {media}"]
    text = ex.body.decode("utf-8", "replace")
    if fmt == "verbose_json":
        try:
            return [f"response_format verbose_json: {p}"
                    for p in schema_problems("CreateTranscriptionResponseVerboseJson", json.loads(text))]
        except ValueError:
            return [f"response_format verbose_json is not JSON: {text[:80]!r}"]
    if text.lstrip().startswith("{"):
        return [f"response_format {fmt} answered JSON ({text[:80]!r}): clients print it as the transcript"]
    if fmt == "vtt" and not text.startswith("WEBVTT"):
        return [f"response_format vtt does not start with WEBVTT: {text[:80]!r}"]
    if fmt == "srt" and text.strip() and " --> " not in text:
        return [f"response_format srt holds no cue timing (' --> '): {text[:80]!r}"]
    return []


@check("audio.transcriptions.options", surface="audio",
       rationale="language (ISO-639-1), temperature and prompt are optional form fields of every transcription "
                 "request (OpenAI API reference, audio/createTranscription); openai-python sends them as form "
                 "parts. A target must answer them with a transcription, not refuse the form.",
       faults=("transcription-options-rejected",))
def test_transcription_options(wire: Wire, target: Target) -> None:
    ex = transcribe(wire, target, language="en", temperature="0.2", prompt="hello world, one two three.")
    if ex.status != 200:
        fail(f"a transcription with language=en, temperature=0.2 and a prompt got {ex.describe()}", ex.evidence())
    try:
        text = json.loads(ex.body).get("text")
    except (ValueError, AttributeError):
        text = None
    if not isinstance(text, str):
        fail(f"a transcription with language, temperature and prompt has no string text: {ex.body[:120]!r}",
             ex.evidence())


@check("audio.transcriptions.language", surface="audio",
       rationale="A malformed language tag is the client's mistake: never a 5xx (openai-python retries those and "
                 "then shows no reason). api.openai.com refuses it with a 400 naming `language` (ISO-639-1 codes "
                 "only); a target that ignores it and transcribes anyway fails under --strict.",
       faults=("transcription-language-500", "transcription-language-ignored"))
def test_transcription_language(wire: Wire, target: Target) -> None:
    ex = transcribe(wire, target, language="xx-not-a-language")
    if target.strict:
        if ex.status == 200:
            fail("a malformed language tag ('xx-not-a-language') was accepted with a 200; api.openai.com answers "
                 "400 naming language (--strict)", ex.evidence())
        expect_client_error_naming(ex, "language", "a malformed language tag", strict=True)
    elif ex.status != 200 and (problems := client_error_problems(ex, "a malformed language tag")):
        fail("; ".join(problems), ex.evidence(*problems))


@check("audio.transcriptions.formats", surface="audio", claims=("transcription-formats",),
       rationale="response_format text, srt and vtt answer text/plain (captions with ' --> ' cue timings, WebVTT "
                 "headed WEBVTT) and verbose_json a JSON object with language, duration and text: subtitle "
                 "tools write srt and vtt straight to files (OpenAI API reference, AudioResponseFormat).",
       faults=("transcription-formats-ignored",))
def test_transcription_formats(wire: Wire, target: Target) -> None:
    found = []
    for fmt in FORMATS:
        ex = transcribe(wire, target, response_format=fmt)
        found.append((ex, format_problems(fmt, ex)))
    expect_each(found)


@check("audio.transcriptions.errors", surface="audio",
       rationale="A request without a file, a file that holds no audio and an empty file are client errors: a 4xx "
                 "in the error envelope (api.openai.com: 400 naming `file`; openai-python's BadRequestError), never "
                 "a 500 that the SDK retries or a 200. Under --strict a decodable file whose name has an "
                 "extension OpenAI does not list (speech.xyz) must be refused too, as api.openai.com does. Each is "
                 "tried whatever the others got.",
       faults=("transcription-errors-500",))
def test_transcription_errors(wire: Wire, target: Target) -> None:
    cases = [("a request without a file", None),
             ("a speech.wav holding no audio", ("speech.wav", b"these bytes are not audio " * 40, "audio/wav")),
             ("an empty speech.wav", ("speech.wav", b"", "audio/wav"))]
    if target.strict:
        cases.append(("a WAV file named speech.xyz (--strict)", ("speech.xyz", tone_wav(), "application/octet-stream")))
    found = []
    for what, file in cases:
        if file is None:
            body, content_type = multipart({"model": audio_model(target)}, None)
            ex = wire.request("POST", PATH, content=body, headers={"Content-Type": content_type})
        else:
            ex = transcribe(wire, target, file)
        found.append((ex, client_error_problems(ex, what, strict=target.strict)))
    expect_each(found)


@check("sdk.audio.transcriptions.create", surface="audio", paths=("sdk",),
       rationale="client.audio.transcriptions.create(model=..., file=..., language='en', temperature=0) with strict "
                 "response validation returns a Transcription whose .text is a string: how CompactifAI's own "
                 "example (and every openai-python user) calls it.",
       faults=("transcription-text-missing",))
def test_sdk_audio_transcriptions_create(target: Target) -> None:
    from .test_sdk import Observed, bounded, make_client

    client = make_client(target, Observed(), strict=True)
    try:
        result = bounded(target, "audio.transcriptions.create", lambda _: client.audio.transcriptions.create(
            model=audio_model(target), file=("speech.wav", tone_wav(), "audio/wav"), language="en", temperature=0))
    finally:
        client.close()
    if not isinstance(getattr(result, "text", None), str):
        fail(f"audio.transcriptions.create returned {type(result).__name__} without a string .text: {result!r}")
