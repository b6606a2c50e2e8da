"""Load a local Hugging Face causal LM (or the embedded "tiny" default) and describe it."""

from __future__ import annotations

import functools

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .detok import build_token_bytes

TINY_DIR = Path(__file__).resolve().parent.parent / "models" / "tiny"


@dataclass
class LoadedModel:
    id: str  # the id clients put in `model`
    path: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    dtype: torch.dtype
    token_bytes: list[bytes]
    eos_ids: tuple[int, ...]
    context_window: int
    created: int
    fingerprint: str
    accepts: frozenset[str] = frozenset()  # media chat content may carry for this id ("image", "audio"); text always

    def variant(self, model_id: str, fingerprint: str, accepts: frozenset[str] | None = None,
                context_window: int | None = None) -> "LoadedModel":
        """The same weights served under another id (a vendor alias, tiny-omni), sharing the grammar compiler;
        `context_window` sets what the alias accepts (Hontoni's -1m: a larger window, vendors/catalogue.py)."""
        from .grammar import compiler_for  # grammar needs llguidance: imported only when variants are made

        alias = replace(self, id=model_id, fingerprint=fingerprint,
                        accepts=self.accepts if accepts is None else accepts,
                        context_window=self.context_window if context_window is None else context_window)
        alias._grammar_compiler = compiler_for(self)  # type: ignore[attr-defined]
        return alias

    @property
    def vocab_size(self) -> int:
        return len(self.token_bytes)

    @functools.cached_property
    def max_token_bytes(self) -> int:
        """The most UTF-8 bytes one token stands for (special tokens' text included): a text of B bytes is at
        least B / max_token_bytes tokens, known without tokenizing it."""
        special = getattr(self.tokenizer, "all_special_tokens", None) or []
        return max([1, *(len(b) for b in self.token_bytes), *(len(str(t).encode()) for t in special)])

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    return torch.device(choice)


def resolve_dtype(device: torch.device, choice: str) -> torch.dtype:
    if choice != "auto":
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[choice]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return tuple(sorted(ids))


class WeightsElsewhere:
    """Stands for the model in a process that only templates, tokenizes and serves HTTP: its config, no weights
    (the engine process holds those, process.py)."""

    def __init__(self, path: str) -> None:
        from transformers import AutoConfig, GenerationConfig

        self.config = AutoConfig.from_pretrained(path)
        try:
            self.generation_config = GenerationConfig.from_pretrained(path)
        except OSError:
            self.generation_config = GenerationConfig.from_model_config(self.config)


def load_model(ref: str = "tiny", device: str = "auto", dtype: str = "auto", served_id: str | None = None,
               weights: bool = True) -> LoadedModel:
    """`ref` is "tiny", a local directory, or a hub id (only where a hub is reachable). Without `weights`, only the
    tokenizer and config are loaded (`model` is a WeightsElsewhere)."""
    path = str(TINY_DIR) if ref == "tiny" else ref
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(torch_device, dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if weights:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(torch_device).eval()
        vocab = int(model.get_output_embeddings().weight.shape[0])
    else:
        model = WeightsElsewhere(path)
        vocab = int(model.config.vocab_size)
    context = int(getattr(model.config, "max_position_embeddings", 0) or tokenizer.model_max_length)
    model_id = served_id or ("tiny" if ref == "tiny" else Path(ref.rstrip("/")).name or ref)
    local = Path(path)
    weights = sorted(local.glob("*.safetensors")) if local.is_dir() else []
    created = int(min((p.stat().st_mtime for p in weights), default=0)) if ref != "tiny" else 1767225600
    # Stable across restarts for the same weights, dtype and runtime: what system_fingerprint promises.
    digest = hashlib.sha256()
    for p in weights:
        digest.update(p.name.encode())
        digest.update(str(p.stat().st_size).encode())
    digest.update(f"{model_id}|{torch_dtype}|{torch.__version__}".encode())
    return LoadedModel(
        id=model_id, path=path, model=model, tokenizer=tokenizer, device=torch_device, dtype=torch_dtype,
        token_bytes=build_token_bytes(tokenizer, vocab), eos_ids=_eos_ids(model, tokenizer),
        context_window=context, created=created, fingerprint="fp_" + digest.hexdigest()[:10],
    )


def default_threads(lm: LoadedModel) -> None:
    """Intra-op threads for CPU inference, unless OMP_NUM_THREADS says otherwise.

    Small models are latency bound: spreading a 100-wide matmul over cores costs more in synchronisation
    than it saves, and OpenMP threads spinning on every core starve the event loop (measured on 2 cores:
    1 thread streamed 5.6k tok/s at concurrency 32, 2 threads under 0.2k). Large models leave one core
    for the event loop and the engine thread.
    """
    if "OMP_NUM_THREADS" in os.environ or lm.device.type != "cpu":
        return
    params = sum(p.numel() for p in lm.model.parameters())
    cores = os.cpu_count() or 1
    torch.set_num_threads(1 if params < 50_000_000 else max(1, cores - 1))
