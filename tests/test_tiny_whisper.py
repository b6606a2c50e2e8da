"""The committed speech model "tiny-whisper", its synthetic voice, and the speech engine around them.

Utterances use seeds below the build's training seeds (``TRAIN_SEED_BASE``) and away from its held-out report
seeds, so the model has never heard any of them. Accuracy bounds sit well below what the committed model
measures, so they flag a broken model or decoder, not noise.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from safetensors import safe_open

from wirecheck.reference_server.engine.speech import (
    UnsupportedLanguage, load_speech_model, split_windows,
)
from wirecheck.reference_server.audio import decode
from wirecheck.reference_server.models import TINY_WHISPER_DIR, tiny_speech
from wirecheck.reference_server.models.build_tiny_whisper import EVAL_SEED_BASE, TRAIN_SEED_BASE

SEEDS = range(7000, 7040)  # unseen: below TRAIN_SEED_BASE, away from EVAL_SEED_BASE
MIN_WORD_ACCURACY = 0.7  # 1 - WER over SEEDS


@pytest.fixture(scope="module")
def speech():
    return load_speech_model("tiny-whisper")


def utterance(seed: int) -> tuple[str, np.ndarray]:
    text = tiny_speech.sample_text(seed)
    return text, tiny_speech.synthesize(text, seed)


def word_accuracy(pairs: list[tuple[str, str]]) -> float:
    errors = sum(tiny_speech.word_errors(ref, hyp) for ref, hyp in pairs)
    return 1 - errors / sum(len(ref.split()) for ref, _ in pairs)


# --- the synthetic voice ----------------------------------------------------------------------------------


def test_seeds_are_unseen():
    assert max(SEEDS) < TRAIN_SEED_BASE and not EVAL_SEED_BASE <= min(SEEDS) < EVAL_SEED_BASE + 10_000


def test_synthesize_is_deterministic_per_seed():
    a, b = tiny_speech.synthesize("hello world", 3), tiny_speech.synthesize("hello world", 3)
    assert a.dtype == np.float32 and a.ndim == 1 and np.array_equal(a, b)
    assert np.abs(a).max() <= 1.0
    other = tiny_speech.synthesize("hello world", 4)
    assert a.shape != other.shape or not np.allclose(a, other)  # another seed is another speaker


def test_synthesize_is_fast():
    texts = [tiny_speech.sample_text(s) for s in range(50)]
    started = time.perf_counter()
    seconds = sum(len(tiny_speech.synthesize(t, s)) for s, t in enumerate(texts)) / tiny_speech.SAMPLE_RATE
    # Milliseconds per second of audio in practice; the bound is loose so that a busy machine passes.
    assert (time.perf_counter() - started) / seconds < 0.05


def test_synthesize_text_rules():
    assert tiny_speech.spoken("  Hello,  big World! ") == "hello big world"
    assert len(tiny_speech.synthesize("", 0)) > 0  # silence with a noise floor
    with pytest.raises(ValueError, match="a-z"):
        tiny_speech.synthesize("h3llo", 0)


def test_wav_round_trip():
    audio = tiny_speech.synthesize("quiz", 5)
    data = tiny_speech.wav_bytes(audio)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert np.abs(decode(data, max_seconds=60).samples - audio).max() < 1e-4  # what the server decodes


def test_word_errors():
    assert tiny_speech.word_errors("a b c", "a b c") == 0
    assert tiny_speech.word_errors("a b c", "a x c d") == 2


# --- the committed model ----------------------------------------------------------------------------------


def test_files_are_small_and_float16():
    files = {p.name: p.stat().st_size for p in TINY_WHISPER_DIR.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "processor_config.json",
            "tokenizer.json", "tokenizer_config.json"} <= set(files)
    assert sum(files.values()) < 2_000_000
    assert json.loads((TINY_WHISPER_DIR / "config.json").read_text())["dtype"] == "float32"
    with safe_open(TINY_WHISPER_DIR / "model.safetensors", "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}


def test_loads_with_hugging_face_classes():
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(TINY_WHISPER_DIR)
    assert WhisperFeatureExtractor.from_pretrained(TINY_WHISPER_DIR).sampling_rate == 16000
    model = WhisperForConditionalGeneration.from_pretrained(TINY_WHISPER_DIR)
    tok = processor.tokenizer
    for word in tiny_speech.VOCABULARY:
        assert tok.decode(tok(word, add_special_tokens=False).input_ids) == word
    special = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    assert all(i >= tok.convert_tokens_to_ids("<|endoftext|>") for i in tok.convert_tokens_to_ids(special))
    # Hugging Face's own Whisper generate runs from the saved generation config.
    text, audio = utterance(7100)
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    ids = model.generate(features, language="en", task="transcribe")
    assert processor.batch_decode(ids, skip_special_tokens=True)[0].strip().split()


def test_transcribes_unseen_utterances(speech):
    pairs = []
    for seed in SEEDS:
        text, audio = utterance(seed)
        result = speech.transcribe(audio, language=None, temperature=0.0, prompt=None)
        assert result.language == "english" and result.tokens >= 0
        assert result.duration == pytest.approx(len(audio) / 16000)
        pairs.append((text, result.text))
    assert word_accuracy(pairs) >= MIN_WORD_ACCURACY, pairs


def test_greedy_is_deterministic_and_sampling_is_seeded(speech):
    _, audio = utterance(7200)
    first = speech.transcribe(audio, temperature=0.0)
    assert speech.transcribe(audio, temperature=0.0) == first
    hot = [speech.transcribe(audio, temperature=1.0, seed=s).text for s in (1, 1, 2)]
    assert hot[0] == hot[1]


def test_prompt_is_context_not_transcript(speech):
    pairs = []
    for seed in SEEDS[:10]:
        text, audio = utterance(seed)
        pairs.append((text, speech.transcribe(audio, prompt="Zebra, jazz & quiz!").text))
    assert word_accuracy(pairs) >= MIN_WORD_ACCURACY - 0.1, pairs


def test_language(speech):
    _, audio = utterance(7300)
    assert speech.languages == ("en",)
    assert speech.transcribe(audio, language="en").language == "english"
    assert speech.transcribe(audio, language="English").text == speech.transcribe(audio).text
    with pytest.raises(UnsupportedLanguage):
        speech.transcribe(audio, language="de")


def test_silence_and_empty_input(speech):
    assert speech.transcribe(np.zeros(0, np.float32)).text == ""
    noise = (np.random.default_rng(0).standard_normal(16000) * 0.01).astype(np.float32)
    assert speech.transcribe(noise).text == ""


def test_long_audio_is_windowed(speech):
    texts, parts = [], []
    for seed in (7400, 7401, 7402, 7403):
        text, audio = utterance(seed)
        texts.append(text)
        parts += [audio, np.zeros(8000, np.float32)]
    audio = np.concatenate(parts)
    assert len(audio) > speech.window  # longer than one window
    windows = split_windows(audio, speech.window)
    assert len(windows) >= 2 and sum(map(len, windows)) == len(audio)
    assert max(map(len, windows)) <= speech.window
    result = speech.transcribe(audio)
    assert len(result.segments) == len(windows) and result.segments[-1].end == pytest.approx(len(audio) / 16000)
    assert word_accuracy([(" ".join(texts), result.text)]) >= MIN_WORD_ACCURACY - 0.1, result.text
