"""POST /v1/audio/transcriptions on `wirecheck serve`: the official openai SDK and raw multipart, the embedded
tiny-whisper model hearing the synthetic voice, every answer format, the errors and the limits.

The speech comes from ``tiny_speech`` at seeds the model never trained on; the text must come back (word
accuracy well under what the model measures, so a broken decoder fails, noise does not).
"""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import openai
import pytest

from wirecheck.reference_server.models import tiny_speech
from wirecheck.suites.serve import running

MODEL = "tiny-whisper"
SEEDS = range(7100, 7110)


def speech(seed: int) -> tuple[str, bytes]:
    text = tiny_speech.sample_text(seed)
    return text, tiny_speech.wav_bytes(tiny_speech.synthesize(text, seed))


def encoded(samples: np.ndarray, fmt: str, codec: str) -> bytes:
    """The same speech re-encoded by FFmpeg (PyAV), as a user's recorder would hand it over."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=tiny_speech.SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
        frame.rate = tiny_speech.SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def post(http: httpx.Client, data: dict, files: dict | None) -> httpx.Response:
    return http.post("/v1/audio/transcriptions", data=data, files=files)


def test_sdk_transcribes_the_synthetic_voice(client: openai.OpenAI) -> None:
    pairs = []
    for seed in SEEDS:
        text, wav = speech(seed)
        got = client.audio.transcriptions.create(model=MODEL, file=("speech.wav", wav, "audio/wav"), language="en",
                                                 temperature=0)
        pairs.append((text, got.text))
    errors = sum(tiny_speech.word_errors(ref, hyp) for ref, hyp in pairs)
    words = sum(len(ref.split()) for ref, _ in pairs)
    assert 1 - errors / words >= 0.6, pairs


def test_verbose_json_has_segments_words_and_usage(client: openai.OpenAI) -> None:
    text, wav = speech(7200)
    got = client.audio.transcriptions.create(model=MODEL, file=("speech.wav", wav, "audio/wav"),
                                             response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert got.language == "english" and got.duration == pytest.approx(len(wav[44:]) / 2 / 16000, abs=0.01)
    assert got.segments and got.segments[0].start == 0 and got.segments[-1].end == pytest.approx(got.duration, abs=0.01)
    assert got.text == " ".join(s.text for s in got.segments if s.text)
    assert [w.word for w in got.words] == got.text.split()
    assert all(a.end <= b.start + 1e-6 for a, b in zip(got.words, got.words[1:]))
    assert all(s.avg_logprob <= 0 and s.tokens for s in got.segments if s.text)


def test_long_audio_is_cut_into_segments(http: httpx.Client) -> None:
    # Three utterances with pauses: longer than the model's 6 s window, so more than one segment.
    texts, pieces = [], []
    for seed in (7300, 7301, 7302, 7303):
        text = tiny_speech.sample_text(seed, 4, 5)
        texts.append(text)
        pieces += [tiny_speech.synthesize(text, seed), np.zeros(8000, np.float32)]
    samples = np.concatenate(pieces)
    assert len(samples) / 16000 > 7
    r = post(http, {"model": MODEL, "response_format": "verbose_json"},
             {"file": ("long.wav", tiny_speech.wav_bytes(samples), "audio/wav")})
    body = r.json()
    assert r.status_code == 200 and len(body["segments"]) >= 2, body
    ends = [s["end"] for s in body["segments"]]
    assert ends == sorted(ends) and ends[-1] == pytest.approx(len(samples) / 16000, abs=0.01)
    expected = " ".join(texts)
    assert tiny_speech.word_errors(expected, body["text"]) <= len(expected.split()) * 0.5, (expected, body["text"])


@pytest.mark.parametrize(("fmt", "codec", "name"), [("flac", "flac", "speech.flac"), ("mp3", "libmp3lame", "speech.mp3"),
                                                    ("ogg", "libopus", "speech.ogg"), ("webm", "libopus", "speech.webm"),
                                                    ("ipod", "aac", "speech.m4a")])
def test_compressed_uploads_are_heard(client: openai.OpenAI, fmt: str, codec: str, name: str) -> None:
    text = tiny_speech.sample_text(7400, 2, 3)
    data = encoded(tiny_speech.synthesize(text, 7400), fmt, codec)
    got = client.audio.transcriptions.create(model=MODEL, file=(name, data))
    assert tiny_speech.word_errors(text, got.text) <= 1, (text, got.text)


def test_text_srt_and_vtt(http: httpx.Client) -> None:
    _, wav = speech(7500)
    answers = {fmt: post(http, {"model": MODEL, "response_format": fmt}, {"file": ("s.wav", wav, "audio/wav")})
               for fmt in ("text", "srt", "vtt")}
    assert all(r.status_code == 200 and r.headers["content-type"].startswith("text/plain") for r in answers.values())
    assert answers["srt"].text.startswith("1\n00:00:00,000 --> 00:00:0")
    assert answers["vtt"].text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:0")
    assert answers["text"].text.strip() in answers["srt"].text


def test_prompt_and_temperature_are_used(http: httpx.Client) -> None:
    _, wav = speech(7600)
    greedy = {post(http, {"model": MODEL, "temperature": "0"}, {"file": ("s.wav", wav, "audio/wav")}).json()["text"]
              for _ in range(2)}
    assert len(greedy) == 1, "temperature 0 is greedy: the same audio gives the same text"
    prompted = post(http, {"model": MODEL, "prompt": "zebra jazz quiz"}, {"file": ("s.wav", wav, "audio/wav")})
    assert prompted.status_code == 200 and isinstance(prompted.json()["text"], str)


@pytest.mark.parametrize(("data", "files", "param", "says"), [
    ({"model": MODEL}, None, "file", "file"),
    ({"model": MODEL}, {"file": ("s.xyz", b"RIFF", "audio/wav")}, "file", "Invalid file format"),
    ({"model": MODEL}, {"file": ("s.wav", b"", "audio/wav")}, "file", "empty"),
    ({"model": MODEL}, {"file": ("s.wav", b"not audio at all" * 50, "audio/wav")}, "file", "could not be decoded"),
    ({"model": MODEL, "language": "xx-not-a-language"}, "wav", "language", "not supported"),
    ({"model": MODEL, "temperature": "1.5"}, "wav", "temperature", "maximum of 1"),
    ({"model": MODEL, "temperature": "hot"}, "wav", "temperature", "not a number"),
    ({"model": MODEL, "response_format": "yaml"}, "wav", "response_format", "yaml"),
    ({"model": MODEL, "timestamp_granularities[]": "word"}, "wav", "timestamp_granularities", "verbose_json"),
])
def test_bad_requests_are_400s_naming_the_field(http: httpx.Client, data: dict, files, param: str, says: str) -> None:
    if files == "wav":
        files = {"file": ("s.wav", speech(7700)[1], "audio/wav")}
    r = post(http, data, files)
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == param and says in error["message"], r.text


def test_unknown_model_is_404_and_json_body_is_400(http: httpx.Client) -> None:
    r = post(http, {"model": "whisper-1"}, {"file": ("s.wav", speech(7700)[1], "audio/wav")})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = http.post("/v1/audio/transcriptions", json={"model": MODEL, "file": "speech.wav"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]


def test_size_and_duration_limits() -> None:
    with running("--max-audio-bytes", "40000", "--max-audio-seconds", "0.5") as server:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            big = tiny_speech.wav_bytes(np.zeros(32000, np.float32))
            r = post(http, {"model": MODEL}, {"file": ("big.wav", big, "audio/wav")})
            assert r.status_code == 413 and r.json()["error"]["param"] == "file"
            long = tiny_speech.wav_bytes(np.zeros(12000, np.float32))
            r = post(http, {"model": MODEL}, {"file": ("long.wav", long, "audio/wav")})
            assert r.status_code == 400 and "longer than" in r.json()["error"]["message"]
            assert http.get("/health").status_code == 200


def test_compactifai_whisper_large_v3_json_only() -> None:
    with running("--profile", "compactifai", "--api-key", "cai-key") as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="cai-key", max_retries=0)
        text, wav = speech(7800)
        with open_bytes(wav) as f:  # CompactifAI's own example passes an open file
            got = client.audio.transcriptions.create(model="whisper-large-v3", file=f, language="en", temperature=0)
        assert tiny_speech.word_errors(text, got.text) <= len(text.split()) // 2 + 1
        with pytest.raises(openai.BadRequestError) as refused:
            client.audio.transcriptions.create(model="whisper-large-v3", file=("s.wav", wav), response_format="srt")
        assert refused.value.param == "response_format"
        with pytest.raises(openai.NotFoundError):
            client.audio.transcriptions.create(model="tiny-whisper", file=("s.wav", wav))
        no_key = httpx.post(server.base_url + "/v1/audio/transcriptions", data={"model": "whisper-large-v3"},
                            files={"file": ("s.wav", wav, "audio/wav")})
        assert no_key.status_code == 401


def open_bytes(data: bytes) -> io.BufferedReader:
    raw = io.BytesIO(data)
    raw.name = "meeting_minutes.wav"  # the SDK takes the file name (and so the format) from .name
    return raw  # type: ignore[return-value]


def test_json_answer_shape(http: httpx.Client) -> None:
    r = post(http, {"model": MODEL}, {"file": ("s.wav", speech(7900)[1], "audio/wav")})
    body = json.loads(r.content)
    assert r.status_code == 200 and set(body) == {"text", "usage"}
    assert body["usage"]["type"] == "duration" and isinstance(body["usage"]["seconds"], int)
