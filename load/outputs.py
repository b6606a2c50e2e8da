"""Reading the per-process parts and writing the run's files (requests.jsonl, run.json, CSVs)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

STAGE_METRICS = ("ttft_ms", "ttfo_ms", "ttfb_ms", "e2el_ms", "tpot_ms", "icl_ms", "ntpot_ms", "tokens_per_event",
                 "output_tokens", "schedule_lag_ms")
STAGE_STATS = ("count", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")
TIMESERIES_COLUMNS = ("t_s", "stage", "started", "completed", "errors", "output_tokens", "in_flight", "ttft_p50_ms",
                      "ttft_p99_ms", "cpu_pct_max", "loop_lag_max_ms")


def read_jsonl(paths: Iterable[Path]) -> list[dict]:
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a killed worker
    return out


def read_parts(out_dir: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """(requests, health, workers) from every process's files under out_dir/parts."""
    parts = out_dir / "parts"
    requests = read_jsonl(sorted(parts.glob("requests-*.jsonl")))
    health = read_jsonl(sorted(parts.glob("health-*.jsonl")))
    workers = [json.loads(p.read_text()) for p in sorted(parts.glob("worker-*.json"))]
    requests.sort(key=lambda r: r["send_ns"])
    health.sort(key=lambda h: h["t_ns"])
    return requests, health, workers


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


def _fmt(value: object) -> object:
    return "" if value is None else round(value, 4) if isinstance(value, float) else value


def stage_rows(run: dict) -> list[dict]:
    rows = []
    for s in run["stages"]:
        row = {"stage": s["index"], "label": s["label"], "users": s["users"], "rate": s["rate"],
               "window_s": s["window_s"], **{f"requests_{k}": v for k, v in s["requests"].items()},
               **s["throughput"]}
        for name in STAGE_METRICS:
            summary = s["metrics"].get(name) or {}
            row.update({f"{name}_{stat}": summary.get(stat) for stat in STAGE_STATS})
        row.update({f"health_{k}": v for k, v in s["health"].items() if k != "verdicts"})
        row.update({f"verdict_{k}": v for k, v in s["health"]["verdicts"].items()})
        row["errors"] = ";".join(f"{k}={v}" for k, v in s["errors"].items())
        if s.get("slo"):
            row["slo_pass"] = all(s["slo"].values())
        rows.append(row)
    return rows


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    columns = list(columns or (rows[0].keys() if rows else []))
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})


def write_run(out_dir: Path, run: dict, series: Sequence[dict], requests: Sequence[dict],
              health: Sequence[dict]) -> None:
    write_jsonl(out_dir / "requests.jsonl", requests)
    write_jsonl(out_dir / "health.jsonl", health)
    (out_dir / "run.json").write_text(json.dumps(run, indent=1))
    write_csv(out_dir / "stages.csv", stage_rows(run))
    write_csv(out_dir / "timeseries.csv", series, TIMESERIES_COLUMNS)
