"""A seeded synthetic "voice" for the speech model "tiny-whisper": text in, 16 kHz mono float32 audio out.

Pure numpy, no TTS engine. Every letter is one short sound with its own spectrum, in one of three kinds:

- *voiced* (15 letters): a harmonic comb on the speaker's pitch, shaped by two formants from a 3 x 5 grid
  (F1 300/500/800 Hz, F2 1000-2900 Hz); neighbours differ by two or more mel bins of a 40-bin front end;
- *noise* (6 letters): a band of noise, like a fricative, at its own centre frequency;
- *stop* (5 letters): a short closure (near silence), a noise burst, and for b and d a voiced murmur.

Word gaps (spaces and punctuation) are near silence. Each sound has its own attack and release, so the level
dips at every letter border and a double letter ("ll") is two sounds, not one long one. Per utterance the seed
draws a speaker (pitch 95-230 Hz with drift and vibrato, a vocal-tract scale that moves every formant +-6%),
a speaking rate (+-20%), a level and a noise floor (18-35 dB SNR); each letter also jitters its duration
and loudness. The same text therefore never makes the same waveform twice across seeds, and a model has to
listen to spectra rather than memorise samples. ``synthesize`` is deterministic for a (text, seed) pair.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from .tiny_words import SPEECH_WORDS, WORDS

SAMPLE_RATE = 16000
VOCABULARY: tuple[str, ...] = tuple(sorted(set(WORDS) | set(SPEECH_WORDS)))
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
PAUSES = " \t\n.,;:!?-"  # each run of these is one word gap

# (F1, F2) in Hz. The grid, not English phonetics: every letter needs a spectrum of its own.
VOICED = {
    "u": (300, 1000), "w": (300, 1300), "m": (300, 1700), "i": (300, 2200), "y": (300, 2900),
    "o": (500, 1000), "r": (500, 1300), "e": (500, 1700), "l": (500, 2200), "n": (500, 2900),
    "v": (800, 1000), "a": (800, 1300), "z": (800, 1700), "j": (800, 2200), "g": (800, 2900),
}
NOISE = {"h": 1800, "q": 2500, "f": 3300, "c": 4400, "x": 5800, "s": 7000}  # band centre, Hz
STOPS = {"p": (1200, False), "k": (2400, False), "t": (4800, False), "b": (1200, True), "d": (4800, True)}
assert sorted(VOICED.keys() | NOISE.keys() | STOPS.keys()) == list(ALPHABET)

# Base durations in seconds, before the speaking rate and per-letter jitter.
VOICED_S, NOISE_S, CLOSURE_S, BURST_S, MURMUR_S, GAP_S = 0.085, 0.09, 0.03, 0.025, 0.035, 0.08
MURMUR = (250, 900)  # formants of the voicing after b and d
RAMP_S = 0.008  # attack and release of every sound


def sample_text(seed: int, min_words: int = 1, max_words: int = 5) -> str:
    """A seeded utterance text: ``min_words``..``max_words`` words from ``VOCABULARY``."""
    rng = np.random.default_rng([seed, 1])
    count = int(rng.integers(min_words, max_words + 1))
    return " ".join(VOCABULARY[i] for i in rng.integers(0, len(VOCABULARY), count))


def _envelope(n: int, sr: int) -> np.ndarray:
    ramp = min(int(RAMP_S * sr), n // 2)
    env = np.ones(n, np.float32)
    if ramp:
        rise = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp, dtype=np.float32))
        env[:ramp], env[n - ramp:] = rise, rise[::-1]
    return env


def _voiced(phase: np.ndarray, f0: float, formants: tuple[float, float], sr: int) -> np.ndarray:
    """Harmonics of the running pitch ``phase`` (radians of the fundamental), weighted by two Gaussian formants.
    Harmonics far from both formants are skipped: they would add nothing audible and cost most of the time."""
    f1, f2 = formants
    k = np.arange(1, int(0.45 * sr / f0) + 1)
    freqs = k * f0
    amps = np.exp(-0.5 * ((freqs - f1) / (60 + 0.1 * f1)) ** 2) + 0.6 * np.exp(-0.5 * ((freqs - f2) / (80 + 0.08 * f2)) ** 2)
    keep = amps > 1e-3
    # Relative phase in float32: within one letter it stays small enough to be exact, and sin is twice as fast.
    rel = (phase - phase[0]).astype(np.float32)
    return np.sin(np.outer(rel, k[keep].astype(np.float32))) @ amps[keep].astype(np.float32)


def _noise_band(n: int, centre: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum *= np.exp(-0.5 * ((freqs - centre) / (0.08 * centre)) ** 2)
    out = np.fft.irfft(spectrum, n)
    return (out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def _plan(text: str) -> list[str]:
    """Letters and word gaps (" "), leading and trailing gaps dropped."""
    plan: list[str] = []
    for ch in text.lower():
        if ch in PAUSES:
            if plan and plan[-1] != " ":
                plan.append(" ")
        elif ch in VOICED or ch in NOISE or ch in STOPS:
            plan.append(ch)
        else:
            raise ValueError(f"the synthetic voice speaks only a-z, spaces and {PAUSES.strip()!r}; got {ch!r}")
    while plan and plan[-1] == " ":
        plan.pop()
    return plan


def spoken(text: str) -> str:
    """``text`` as the voice says it: lower case, one space per word gap (what a perfect transcript reads)."""
    return "".join(_plan(text))


def synthesize(text: str, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Render ``text`` (a-z and word breaks; case is ignored) as mono float32 audio in [-1, 1]."""
    return render(text, seed, sample_rate)[0]


def render(text: str, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``synthesize``, plus the (start, end) sample span of each character of ``spoken(text)`` (training uses
    them to tell the decoder where to listen)."""
    rng = np.random.default_rng([seed, 2])
    sr = sample_rate
    f0 = rng.uniform(95.0, 230.0)
    tract = rng.uniform(0.94, 1.06)
    rate = rng.uniform(0.83, 1.2)  # duration multiplier
    vibrato_hz, vibrato_phase = rng.uniform(4.0, 6.0), rng.uniform(0, 2 * np.pi)
    lead, tail = (int(rng.uniform(0.05, 0.3) * sr) for _ in range(2))

    # (character index, kind, samples, frequencies); kinds: "gap" silence, "noise" band, "voiced" formants,
    # "murmur" quiet formants.
    sounds: list[tuple[int, str, int, tuple[float, ...]]] = []
    plan = _plan(text)
    for i, ch in enumerate(plan):
        scale = rate * sr * rng.uniform(0.9, 1.1)
        if ch == " ":
            sounds.append((i, "gap", int(GAP_S * scale), ()))
        elif ch in VOICED:
            sounds.append((i, "voiced", int(VOICED_S * scale), VOICED[ch]))
        elif ch in NOISE:
            sounds.append((i, "noise", int(NOISE_S * scale), (NOISE[ch],)))
        else:
            centre, voiced = STOPS[ch]
            sounds += [(i, "gap", int(CLOSURE_S * scale), ()), (i, "noise", int(BURST_S * scale), (centre,))]
            if voiced:
                sounds.append((i, "murmur", int(MURMUR_S * scale), MURMUR))

    total = lead + tail + sum(n for _, _, n, _ in sounds)
    t = np.arange(total) / sr
    # Pitch falls ~10% over the utterance (declination) and wobbles 2% (vibrato); phase is its running integral.
    pitch = f0 * (1 - 0.1 * t / max(t[-1], 1e-3)) * (1 + 0.02 * np.sin(2 * np.pi * vibrato_hz * t + vibrato_phase))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    out = np.zeros(total, np.float32)
    pos = lead
    spans = [(total, 0)] * len(plan)
    for i, kind, n, freqs in sounds:
        spans[i] = (min(spans[i][0], pos), pos + n)
        if kind == "noise":
            out[pos:pos + n] = _noise_band(n, freqs[0] * tract, rng, sr) * 0.5
        elif kind != "gap":
            voice = _voiced(phase[pos:pos + n], f0, (freqs[0] * tract, freqs[1] * tract), sr)
            out[pos:pos + n] = voice * ((0.35 if kind == "murmur" else 1.0) / (np.abs(voice).max() + 1e-9))
        if kind != "gap":
            out[pos:pos + n] *= _envelope(n, sr) * rng.uniform(0.75, 1.0)
        pos += n
    out += rng.standard_normal(total).astype(np.float32) * 10 ** (-rng.uniform(18.0, 35.0) / 20) * 0.5
    return (out * (rng.uniform(0.2, 0.8) / (np.abs(out).max() + 1e-9))).astype(np.float32), spans


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV of float samples in [-1, 1] (clipped)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance (substitutions + deletions + insertions): the numerator of the word error rate.
    Word accuracy over a set is 1 - sum(errors) / sum(reference words)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (word != other))
    return row[-1]
