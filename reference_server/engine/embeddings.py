"""Sentence embeddings from a causal LM: mean of the final hidden states over real tokens, L2-normalised."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers import PreTrainedModel


def pooled_batches(model: PreTrainedModel, inputs: list[list[int]], pad_id: int | None,
                   batch_size: int = 32) -> Iterator[list[list[float]]]:
    """The vectors `batch_size` inputs at a time: the engine interleaves these batches with decode steps, so a
    request of 300,000 tokens to embed does not hold every stream still for seconds."""
    pad = pad_id if pad_id is not None else 0
    for start in range(0, len(inputs), batch_size):
        group = inputs[start : start + batch_size]
        width = max(len(ids) for ids in group)
        ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in group], device=model.device)
        mask = torch.tensor([[1] * len(ids_) + [0] * (width - len(ids_)) for ids_ in group], device=model.device)
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        yield torch.nn.functional.normalize(mean, dim=-1).cpu().tolist()


def shorten(vector: list[float], dimensions: int | None) -> list[float]:
    """Matryoshka-style: truncate, then renormalise so the result is still unit length."""
    if dimensions is None or dimensions >= len(vector):
        return vector
    head = vector[:dimensions]
    norm = sum(x * x for x in head) ** 0.5 or 1.0
    return [x / norm for x in head]
