"""Recipe for the embedded media adapter "tiny-omni":
``python -m wirecheck.reference_server.models.build_tiny_omni --out DIR``.

Builds everything locally, with no hub and no downloaded data:

1. synthetic media made at run time: images of one coloured shape (6 colours x circle / square / triangle, any
   size, place, background and noise, some JPEG-compressed) and audio of tones and beeps (low 150-400 Hz or
   high 1.2-3 kHz; one long tone, two or three beeps; or silence; over a noise floor or digital silence), each
   with its answer ("a red circle", "three high beeps", "silence");
2. each sample is a chat that the server would build for it: a question (or none) and the media part in one user
   turn, templated by ``prompts.media_prompt`` with the media as a run of placeholder ids, preprocessed by the
   server's own functions (``engine.media.image_pixels`` at both details, ``engine.media.log_mel``);
3. the encoders of ``tiny_omni`` (a conv stem, two transformer layers and a projector each) write their vectors
   over the placeholders in the input embeddings of the committed "tiny" LM, which stays frozen: only the
   encoders learn, by cross-entropy on the answer and ``<|im_end|>``: 3000 steps of AdamW, about 15 minutes on
   one CPU core (a second one makes the media);
4. ``model.safetensors`` (float16) and ``config.json`` (the encoder sizes and the sha256 of the LM weights the
   adapter speaks to; the server loads it only beside that LM).

The report at the end loads the saved directory through ``engine.media.MediaAdapter`` and decodes held-out
media greedily, as the server does (images through a PNG round trip and ``decode_image``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..engine.media import Media, MediaAdapter, decode_image, image_pixels, lm_digest, log_mel
from ..prompts import media_prompt
from . import TINY_MODEL_DIR
from . import tiny_omni as arch
from .build_tiny import learning_rate
from .tiny_template import IM_END

COLOURS = {"red": (215, 35, 35), "green": (40, 160, 60), "blue": (40, 70, 215), "yellow": (235, 205, 40),
           "purple": (135, 50, 165), "orange": (240, 135, 30)}
SHAPES = ("circle", "square", "triangle")
PITCHES = {"low": (150.0, 400.0), "high": (1200.0, 3000.0)}
COUNT_WORDS = {2: "two", 3: "three"}
IMAGE_QUESTIONS = ["What is in this image?", "What do you see?", "Describe the image.", "What is this?",
                   "What is in the picture?", "Describe this picture in a few words.", "What shape is it?",
                   "What is shown here?", "What colour is it?", "Look at this.", ""]
AUDIO_QUESTIONS = ["What is this audio file about?", "What do you hear?", "Describe the sound.",
                   "What is this sound?", "Listen to this.", "What is in this recording?", "How many beeps?", ""]
SYSTEM_PROMPTS = ["You are a helpful assistant.", "Be concise.", "You are tiny, a small test model."]
MIN_SECONDS, MAX_SECONDS = 1.0, 5.0  # audio clip lengths
EVAL_SEED_BASE = 500_000  # held-out seeds; training draws from random.Random(args.seed)
IGNORE = -100


# --- media ----------------------------------------------------------------------------------------------------


def _jitter(rng: random.Random, rgb: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)  # type: ignore[return-value]


def draw_image(rng: random.Random) -> tuple[Image.Image, str]:
    """One coloured shape on a grey-ish background, any size and aspect; its answer."""
    colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    w = rng.randint(40, 240)
    h = max(32, min(320, int(w * rng.uniform(0.7, 1.4))))
    grey = rng.choice([rng.randint(0, 60), rng.randint(200, 255), rng.randint(90, 170)])
    image = Image.new("RGB", (w, h), _jitter(rng, (grey, grey, grey), 12))
    side = min(w, h) * rng.uniform(0.35, 0.85)
    cx, cy = rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2)
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    fill = _jitter(rng, COLOURS[colour], 25)
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, box[1]), (box[0], box[3]), (box[2], box[3])], fill=fill)
    pixels = np.asarray(image, dtype=np.float32)
    pixels += np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0, 12), pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if rng.random() < 0.2:  # JPEG artefacts, as photos and screenshots carry them
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(40, 90))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image, f"{'an' if colour == 'orange' else 'a'} {colour} {shape}"


def tone_clip(rng: random.Random, seconds: float) -> tuple[np.ndarray, str]:
    """`seconds` of 16 kHz audio: one long tone, two or three beeps, or silence over a noise floor; its answer."""
    n = int(seconds * arch.SAMPLE_RATE)
    noise = np.random.default_rng(rng.getrandbits(32)).standard_normal(n).astype(np.float32)
    # A noise floor from 100 dB to 30 dB below full scale, or digital silence (synthesised files have none).
    audio = noise * (0.0 if rng.random() < 0.15 else 10 ** rng.uniform(-5, -1.5))
    if rng.random() < 0.08:
        return audio, "silence"
    pitch = rng.choice(list(PITCHES))
    count = rng.choice([1, 2, 3])
    freq = rng.uniform(*PITCHES[pitch])
    level = rng.uniform(0.1, 0.8)
    if count == 1:
        lengths, gaps = [rng.uniform(0.35, min(1.6, seconds * 0.8))], []
    else:
        lengths = [rng.uniform(0.06, 0.15) for _ in range(count)]  # three fit in MIN_SECONDS
        gaps = [rng.uniform(0.08, 0.25) for _ in range(count - 1)]
    total = sum(lengths) + sum(gaps)
    start = rng.uniform(0.02, max(0.03, seconds - total - 0.02))
    harmonics = rng.choice([(1.0,), (1.0, 0.3), (1.0, 0.0, 0.25)])  # sine, brighter, square-ish
    t0 = start
    for k, length in enumerate(lengths):
        a, b = int(t0 * arch.SAMPLE_RATE), min(n, int((t0 + length) * arch.SAMPLE_RATE))
        t = np.arange(b - a, dtype=np.float32) / arch.SAMPLE_RATE
        wave = sum(amp * np.sin(2 * np.pi * freq * (h + 1) * t) for h, amp in enumerate(harmonics))
        ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01) if len(t) else t
        audio[a:b] += (level * wave * ramp).astype(np.float32)
        t0 += length + (gaps[k] if k < len(gaps) else 0.0)
    answer = f"a {pitch} tone" if count == 1 else f"{COUNT_WORDS[count]} {pitch} beeps"
    return np.clip(audio, -1, 1), answer


# --- chats ----------------------------------------------------------------------------------------------------


def chat(rng: random.Random, kind: str) -> list[dict]:
    """A one-turn chat with a question (or none) and the media part, in either order; sometimes a system turn."""
    question = rng.choice(IMAGE_QUESTIONS if kind == "image" else AUDIO_QUESTIONS)
    part = ({"type": "image_url", "image_url": {"url": "data:"}} if kind == "image"
            else {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}})
    parts = [part]
    if question:
        text = {"type": "text", "text": question}
        parts = [text, part] if rng.random() < 0.6 else [part, text]
    messages = [{"role": "user", "content": parts}]
    if rng.random() < 0.2:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    return messages


def sample(rng: random.Random, kind: str, size: int, seconds: float) -> tuple[list[dict], Media, str]:
    if kind == "image":
        image, answer = draw_image(rng)
        return chat(rng, kind), Media("image", image_pixels(image, size)), answer
    audio, answer = tone_clip(rng, seconds)
    return chat(rng, kind), Media("audio", log_mel(audio)), answer


def media_key(messages: list[dict]) -> tuple[int, int]:
    i = len(messages) - 1
    return i, next(j for j, p in enumerate(messages[i]["content"]) if p["type"] != "text")


class Batcher:
    def __init__(self, tokenizer, placeholder: int) -> None:
        self.tokenizer = tokenizer
        self.placeholder = placeholder
        self.end = tokenizer.convert_tokens_to_ids(IM_END)

    def __call__(self, samples: list[tuple[list[dict], Media, str]]) -> dict[str, torch.Tensor]:
        rows, offsets, media = [], [], []
        for messages, item, answer in samples:
            prompt = media_prompt(self.tokenizer, messages, None, {media_key(messages): item}, self.placeholder)
            target = self.tokenizer.encode(answer, add_special_tokens=False) + [self.end]
            rows.append((prompt.ids + target, [IGNORE] * len(prompt.ids) + target))
            offsets.append(prompt.media[0][0])
            media.append(item.data)
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), self.placeholder, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (i, l) in enumerate(rows):
            ids[r, :len(i)], labels[r, :len(l)], mask[r, :len(i)] = torch.tensor(i), torch.tensor(l), 1
        return {"ids": ids, "labels": labels, "mask": mask, "offsets": torch.tensor(offsets),
                "media": torch.from_numpy(np.stack(media))}


def encode_media(omni: arch.Omni, kind: str, media: torch.Tensor) -> torch.Tensor:
    return omni.image(arch.normalise_pixels(media)) if kind == "image" else omni.audio(media)


def merged_embeddings(lm, vectors: torch.Tensor, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """The LM's token embeddings with each row's media vectors written from its offset on."""
    embeds = lm.get_input_embeddings()(ids)
    rows = torch.arange(ids.shape[0])[:, None]
    cols = offsets[:, None] + torch.arange(vectors.shape[1])[None, :]
    return embeds.index_put((rows, cols), vectors)


class Batches(torch.utils.data.IterableDataset):
    """The training batches, alternating images and audio; step s draws from its own seed, so the batches do not
    depend on which process makes them."""

    def __init__(self, batcher: Batcher, args: argparse.Namespace) -> None:
        self.batcher, self.args = batcher, args

    def __iter__(self):
        for step in range(self.args.steps):
            rng = random.Random(self.args.seed * 1_000_003 + step)
            kind = "image" if step % 2 == 0 else "audio"
            size = arch.IMAGE_SIZES[rng.choice(["low", "high"])]
            seconds = rng.uniform(MIN_SECONDS, MAX_SECONDS)  # one length per batch, so its spectrograms stack
            yield kind, self.batcher([sample(rng, kind, size, seconds) for _ in range(self.args.batch)])


def train(lm, omni: arch.Omni, batcher: Batcher, args: argparse.Namespace) -> float:
    optimizer = torch.optim.AdamW(omni.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    omni.train()
    started, smoothed = time.time(), float("nan")
    # One worker makes the media while the main process trains (on one thread: these matrices are too small for
    # two threads to beat their synchronisation, and a busy second core makes it much worse).
    batches = torch.utils.data.DataLoader(Batches(batcher, args), batch_size=None, num_workers=1, prefetch_factor=4)
    for step, (kind, batch) in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        vectors = encode_media(omni, kind, batch["media"])
        embeds = merged_embeddings(lm, vectors, batch["ids"], batch["offsets"])
        logits = lm(inputs_embeds=embeds, attention_mask=batch["mask"]).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(omni.parameters(), 1.0)
        optimizer.step()
        smoothed = loss.item() if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * loss.item()
        if step % args.log_every in (0, 1) or step == args.steps - 1:
            print(f"step {step:5d}  {kind:5s}  loss {loss.item():.4f}  smoothed {smoothed:.4f}  "
                  f"{time.time() - started:6.1f}s", flush=True)
    omni.eval()
    return smoothed


# --- output ---------------------------------------------------------------------------------------------------


def save(out: Path, omni: arch.Omni, lm_dir: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in omni.state_dict().items()},
              out / "model.safetensors", metadata={"format": "pt"})
    config = {"model_type": "wirecheck-tiny-omni", **omni.config.as_dict(), "lm_sha256": lm_digest(lm_dir),
              "image_sizes": arch.IMAGE_SIZES, "patch": arch.PATCH, "n_mels": arch.N_MELS, "hop": arch.HOP,
              "sample_rate": arch.SAMPLE_RATE, "audio_frames_per_token": arch.AUDIO_FRAMES_PER_TOKEN}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def answer(lm, tokenizer, adapter: MediaAdapter, messages: list[dict], item: Media, placeholder: int) -> str:
    """Greedy answer the way the server computes it: placeholders overwritten by the adapter's vectors."""
    prompt = media_prompt(tokenizer, messages, None, {media_key(messages): item}, placeholder)
    ids = torch.tensor([prompt.ids])
    with torch.inference_mode():
        embeds = merged_embeddings(lm, adapter.embed(item)[None], ids, torch.tensor([prompt.media[0][0]]))
        out = lm.generate(inputs_embeds=embeds, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                          do_sample=False, eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
                          pad_token_id=placeholder)
    return tokenizer.decode(out[0], skip_special_tokens=True).strip()


def _parts(answer: str) -> tuple[str, str]:
    """(colour or pitch, shape or count) of an answer, to score each half on its own."""
    words = answer.split()
    if answer == "silence":
        return "silence", "silence"
    if words[-1] in SHAPES:
        return words[1], words[2]
    return words[-2], words[0]


def report(out: Path, lm, tokenizer, placeholder: int, samples: int) -> dict[str, float]:
    """Exact answers on held-out media, and each half of the answer (colour / shape, pitch / count) on its own."""
    adapter = MediaAdapter(out, torch.device("cpu"), torch.float32)
    scores: dict[str, float] = {}
    for kind, detail in (("image", "low"), ("image", "high"), ("audio", None)):
        right, halves = 0, [0, 0]
        for i in range(samples):
            rng = random.Random(EVAL_SEED_BASE + i)
            messages = chat(rng, kind)
            if kind == "image":
                image, truth = draw_image(rng)
                png = io.BytesIO()
                image.save(png, format="PNG")
                item = decode_image(png.getvalue(), detail, "image")
            else:
                audio, truth = tone_clip(rng, rng.uniform(MIN_SECONDS, MAX_SECONDS))
                item = Media("audio", log_mel(audio))
            got = answer(lm, tokenizer, adapter, messages, item, placeholder)
            right += got == truth
            if len(got.split()) in (1, 3):
                halves = [h + (a == b) for h, a, b in zip(halves, _parts(got), _parts(truth))]
            if i < 4:
                print(f"  {kind:5s} {detail or '':4s} {truth!r:22} -> {got!r}")
        name = f"{kind}{'-' + detail if detail else ''}"
        scores[name] = right / samples
        first, second = ("colour", "shape") if kind == "image" else ("pitch", "count")
        print(f"held-out {name}: exact {right / samples:.3f}, {first} {halves[0] / samples:.3f}, "
              f"{second} {halves[1] / samples:.3f} ({samples} samples)")
    return scores


def build(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(args.lm)
    lm = AutoModelForCausalLM.from_pretrained(args.lm, dtype=torch.float32).eval()
    lm.requires_grad_(False)
    placeholder = tokenizer.pad_token_id
    omni = arch.Omni(arch.OmniConfig(lm_hidden_size=lm.config.hidden_size))
    print(f"adapter: {sum(p.numel() for p in omni.parameters())} parameters; LM frozen", flush=True)
    loss = train(lm, omni, Batcher(tokenizer, placeholder), args)
    print(f"trained {args.steps} steps, final smoothed loss {loss:.4f}, {time.time() - started:.0f}s")
    save(args.out, omni, args.lm)
    for path in sorted(args.out.iterdir()):
        print(f"  {path.name:20s} {path.stat().st_size:9d} bytes")
    report(args.out, lm, tokenizer, placeholder, args.eval_samples)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--lm", type=Path, default=TINY_MODEL_DIR, help="the frozen LM (default: the embedded tiny)")
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps in all (images and audio alternate)")
    parser.add_argument("--batch", type=int, default=32, help="samples per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--log-every", type=int, default=50, help="print the loss of every Nth image and audio step")
    parser.add_argument("--eval-samples", type=int, default=200, help="held-out samples per kind in the report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)
    build(parse_args(argv))


if __name__ == "__main__":
    main()
