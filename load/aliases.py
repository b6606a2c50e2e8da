"""Metric names are not standard across tools; formulas are. The report prints both tables.

Facts from research/load.md 1.1 and 6.1 (vLLM bench serve, GuideLLM, AIPerf source and docs).
"""

from __future__ import annotations

FORMULAS: list[dict[str, str]] = [
    {"name": "ttft_ms", "formula": "t_first_token − t_send",
     "meaning": "time to the first event carrying text, reasoning or tool arguments (role preludes, pings, "
                "message_start and usage-only chunks do not count)"},
    {"name": "ttfo_ms", "formula": "t_first_content − t_send", "meaning": "time to the first non-reasoning output"},
    {"name": "ttfb_ms", "formula": "t_headers − t_send",
     "meaning": "time to response headers; what locust's own response_time reports for stream=True"},
    {"name": "e2el_ms", "formula": "t_last_token − t_send", "meaning": "end-to-end latency of a request"},
    {"name": "tpot_ms", "formula": "(t_last_token − t_first_token) / (n_out − 1), n_out ≥ 2",
     "meaning": "decode time per output token after the first, per request, request-weighted"},
    {"name": "icl_ms", "formula": "t_i − t_(i−1) over consecutive token events, pooled over requests",
     "meaning": "inter-chunk gap; differs from tpot when one event carries several tokens"},
    {"name": "ntpot_ms", "formula": "e2el / n_out", "meaning": "normalised time per output token, TTFT included"},
    {"name": "tokens_per_event", "formula": "n_out / token events", "meaning": "1.0 unless chunks carry several tokens"},
    {"name": "output_tokens", "formula": "usage.completion_tokens | usage.output_tokens, else token events",
     "meaning": "n_out: the server's count when it reports one"},
    {"name": "schedule_lag_ms", "formula": "t_decided − t_scheduled",
     "meaning": "open loop only: how late the generator began a request against its schedule"},
    {"name": "prep_ms", "formula": "t_send − t_decided",
     "meaning": "client overhead before the request reached the network (not counted in any latency)"},
    {"name": "req_s", "formula": "ok requests completed in the window / window",
     "meaning": "window = stage minus its warm-up"},
    {"name": "output_tok_s", "formula": "Σ tokens of token events arriving in the window / window",
     "meaning": "each event weighs n_out / token events of its request"},
    {"name": "percentiles", "formula": "numpy.percentile(samples, q, method='linear') over raw samples",
     "meaning": "exact; samples from all workers pooled, never averaged percentiles"},
]

ALIASES: list[dict[str, str]] = [
    {"ours": "ttft_ms", "vllm_bench": "TTFT", "guidellm": "time_to_first_token_ms", "aiperf": "Time to First Token"},
    {"ours": "ttfo_ms", "vllm_bench": "—", "guidellm": "— (first_output_token_iteration)",
     "aiperf": "Time to First Output Token"},
    {"ours": "e2el_ms", "vllm_bench": "E2EL", "guidellm": "request_latency", "aiperf": "Request Latency"},
    {"ours": "tpot_ms", "vllm_bench": "TPOT", "guidellm": "inter_token_latency_ms (token-weighted)",
     "aiperf": "Inter Token Latency"},
    {"ours": "icl_ms", "vllm_bench": "ITL", "guidellm": "—", "aiperf": "Inter Chunk Latency"},
    {"ours": "ntpot_ms", "vllm_bench": "—", "guidellm": "≈ time_per_output_token_ms (token-weighted)",
     "aiperf": "—"},
    {"ours": "output_tok_s", "vllm_bench": "Output token throughput", "guidellm": "output_tokens_per_second",
     "aiperf": "Output Token Throughput"},
    {"ours": "req_s", "vllm_bench": "Request throughput", "guidellm": "requests_per_second",
     "aiperf": "Request Throughput"},
    {"ours": "schedule_lag_ms", "vllm_bench": "client_queue_time", "guidellm": "request_targeted_start_delay",
     "aiperf": "schedule lag"},
]
