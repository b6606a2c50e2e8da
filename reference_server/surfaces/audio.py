"""POST /v1/audio/transcriptions: OpenAI's speech to text, answered by the embedded tiny speech model.

The upload is a multipart form (the openai SDK's `audio.transcriptions.create`). Audio longer than the model's
window is cut into windows, one segment each. Answers as OpenAI sends them: `json` {"text", "usage"},
`verbose_json` with segments (and words when asked), or text/plain `text`, `srt` and `vtt`.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..audio import Audio, check_upload, decode
from ..engine.speech import Segment, SpeechModel, Transcript, UnsupportedLanguage, load_speech_model
from ..errors import APIError, invalid, model_not_found
from ..request_body import validate

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
MAX_FIELDS = 32


async def create_transcription(request: Request) -> Response:
    state = request.app.state
    fields, audio_part = await _form(request, state.config.max_audio_bytes)
    validate("CreateTranscriptionRequest", {**fields, "file": "<binary>"})
    models: SpeechModels = state.speech
    if fields["model"] not in models:
        raise model_not_found(fields["model"])
    response_format = fields.get("response_format", "json")
    if response_format not in models.formats:
        raise invalid(f"response_format '{response_format}' is not supported by this server; it answers "
                      f"{', '.join(models.formats)}.", param="response_format", code="unsupported_value")
    speech = await models.get()
    language = fields.get("language")
    try:
        speech.language_code(language)
    except UnsupportedLanguage as exc:
        raise invalid(str(exc), param="language", code="unsupported_language") from None
    granularities = fields.get("timestamp_granularities") or ["segment"]
    if "word" in granularities and response_format != "verbose_json":
        raise invalid("timestamp_granularities requires response_format 'verbose_json'.",
                      param="timestamp_granularities")
    filename, data = audio_part
    check_upload(filename, data, state.config.max_audio_bytes)
    audio = await run_in_threadpool(decode, data, state.config.max_audio_seconds)
    temperature = float(fields.get("temperature", 0))
    async with models.busy:
        found = await run_in_threadpool(speech.transcribe, audio.samples, language, temperature,
                                        fields.get("prompt"))
    return _answer(response_format, found, audio, temperature, "word" in granularities)


async def _form(request: Request, max_bytes: int) -> tuple[dict[str, Any], tuple[str | None, bytes]]:
    """The form's text fields (arrays from repeated `name[]` parts) and its one file part."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise invalid("This endpoint takes multipart/form-data with the audio as the 'file' part.", param="file")
    try:
        form = await request.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=1024 * 1024)
    except Exception as exc:  # noqa: BLE001 - python-multipart and Starlette raise several kinds on bad forms
        status = getattr(exc, "status_code", 400)
        raise APIError(413 if status == 413 else 400, f"The multipart form could not be read: {exc}",
                       param="file") from None
    fields: dict[str, Any] = {}
    upload: UploadFile | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "file":
                raise invalid(f"Unexpected file part '{name}'; the audio goes in 'file'.", param=name)
            upload = value
        elif name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        else:
            fields[name] = _number(name, value)
    if upload is None:
        raise invalid("Missing required parameter: 'file'.", param="file")
    data = await upload.read(max_bytes + 1)
    return fields, (upload.filename, data)


def _number(name: str, value: str) -> Any:
    if name != "temperature":
        return value
    try:
        return float(value)
    except ValueError:
        raise invalid(f"Invalid value for 'temperature': '{value}' is not a number.", param="temperature") from None


def _answer(response_format: str, found: Transcript, audio: Audio, temperature: float, words: bool) -> Response:
    # OpenAI bills whole-file transcription by duration: usage {"type": "duration", "seconds"} on json answers.
    usage = {"type": "duration", "seconds": math.ceil(audio.duration)}
    if response_format == "json":
        return JSONResponse({"text": found.text, "usage": usage})
    if response_format == "text":
        return PlainTextResponse(found.text + "\n")
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(captions(found.segments, vtt=response_format == "vtt"))
    body: dict[str, Any] = {"task": "transcribe", "language": found.language, "duration": round(audio.duration, 3),
                            "text": found.text,
                            "segments": [_segment(i, s, temperature) for i, s in enumerate(found.segments)],
                            "usage": usage}
    if words:
        body["words"] = word_times(found.segments)
    return JSONResponse(body)


def _segment(i: int, s: Segment, temperature: float) -> dict[str, Any]:
    # compression_ratio as Whisper computes it: text bytes over their zlib-compressed size.
    raw = s.text.encode()
    return {"id": i, "seek": int(s.start * 100), "start": round(s.start, 3), "end": round(s.end, 3),
            "text": s.text, "tokens": list(s.token_ids), "temperature": temperature,
            "avg_logprob": round(s.avg_logprob, 4),
            "compression_ratio": round(len(raw) / max(1, len(zlib.compress(raw))), 4), "no_speech_prob": 0.0}


def word_times(segments: tuple[Segment, ...]) -> list[dict[str, Any]]:
    """Word timings spread over each segment in proportion to the words' lengths: estimates, not alignments
    (every word still lies inside its segment, in order, as OpenAI's do)."""
    out = []
    for s in segments:
        words = s.text.split()
        total = sum(len(w) for w in words) or 1
        at = s.start
        for w in words:
            span = (s.end - s.start) * len(w) / total
            out.append({"word": w, "start": round(at, 3), "end": round(at + span, 3)})
            at += span
    return out


def captions(segments: tuple[Segment, ...], *, vtt: bool) -> str:
    """SubRip or WebVTT cues, one per segment with text."""
    cues = [s for s in segments if s.text]
    sep = "." if vtt else ","
    lines = ["WEBVTT", ""] if vtt else []
    for n, s in enumerate(cues, start=1):
        if not vtt:
            lines.append(str(n))
        lines.append(f"{_clock(s.start, sep)} --> {_clock(s.end, sep)}")
        lines += [s.text, ""]
    return "\n".join(lines) + ("" if lines else "\n")


def _clock(seconds: float, sep: str) -> str:
    millis = int(round(seconds * 1000))
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class SpeechModels:
    """The speech-to-text models a server answers for, by id, all backed by one model directory and loaded on
    first use: most servers never transcribe, and loading costs their start-up nothing then."""

    def __init__(self, ids: list[str], ref: str, device: str, formats: tuple[str, ...] = FORMATS) -> None:
        self.ids, self.ref, self.device, self.formats = ids, ref, device, formats
        self._model: SpeechModel | None = None
        self._loading = asyncio.Lock()
        self.busy = asyncio.Lock()  # one transcription at a time: the model is small, the machine may be too

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.ids

    async def get(self) -> SpeechModel:
        async with self._loading:
            if self._model is None:
                self._model = await run_in_threadpool(load_speech_model, self.ref, self.device)
            return self._model
