"""Prompt sets with controlled input length.

The target's tokenizer is unknown, so a prompt of ``n`` input tokens is ``n`` short common English
words (about one token each in BPE vocabularies); the server's ``usage`` reports the real count,
which the report shows as the measured input length. Each request gets a different prompt (its own
seeded word order) so no prefix cache turns the run into a cache benchmark by accident.
Output length is controlled with max_tokens; add ``--extra-body '{"min_tokens": N}'`` (wirecheck,
vLLM) or ``'{"ignore_eos": true}'`` (vLLM) to make it exact.
"""

from __future__ import annotations

import random

WORDS = ("the of and to in is it you that he was for on are with as his they be at one have this from or "
         "had by word but what some we can out other were all there when up use your how said an each she "
         "which do their time if will way about many then them write would like so these her long make thing "
         "see him two has look more day could go come did number sound no most people my over know water than "
         "call first who may down side been now find any new work part take get place made live where after "
         "back little only round man year came show every good me give our under name very through just form "
         "sentence great think say help low line differ turn cause much mean before move right boy old too same "
         "tell does set three want air well also play small end put home read hand port large spell add even "
         "land here must big high such follow act why ask men change went light kind off need house picture try "
         "us again animal point mother world near build self earth father head stand own page should country "
         "found answer school grow study still learn plant cover food sun four between state keep eye never "
         "last let thought city tree cross farm hard start might story saw far sea draw left late run").split()

PREAMBLE = "Continue this list of words for as long as you can:"


def prompt_text(index: int, input_tokens: int, seed: int = 0) -> str:
    """Request ``index``'s prompt: about ``input_tokens`` words, distinct per index."""
    rng = random.Random(seed * 1_000_003 + index)
    n = max(1, input_tokens - 10)  # the preamble and chat template take about ten tokens
    return PREAMBLE + " " + " ".join(rng.choice(WORDS) for _ in range(n))
