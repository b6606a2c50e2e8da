"""report.html: one self-contained page (inline CSS and SVG, no script, no external URL) that reads
as a picture first and a reference second: headline numbers, load-generator health, plots, then the
full tables, formulas and aliases from run.json.

``python -m wirecheck.load.report_html DIR`` rewrites DIR/report.html from the files a run wrote there.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import report_sections as sec
from .analysis import THRESHOLDS, verdict
from .charts import esc

STATS = ("count", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")
CHECKS = (  # verdict key, health value key, what it measures, how to read it
    ("cpu", "cpu_pct_max", "client CPU %", "busiest worker's mean CPU in the window; a saturated client delays its "
     "own timestamps"),
    ("loop_lag", "loop_lag_p99_ms", "loop lag p99 ms", "event-loop lag sampled by a 10 ms ticker; lag is added to "
     "every timestamp taken while the loop was blocked"),
    ("schedule_lag", "schedule_lag_p99_ms", "schedule lag p99 ms", "open loop: how late requests left against their "
     "schedule (coordinated omission shows here)"),
    ("zero_gaps", "zero_gap_fraction", "near-zero gaps", "share of inter-chunk gaps under 0.1 × the typical request's "
     "mean gap: events bunched by a buffering proxy, a coalescing reader or the server's own batching"),
    ("tokens_per_event", "tokens_per_event_mean", "tokens/event", "more than one token per event makes ICL differ "
     "from TPOT (speculative decoding or server batching)"),
    ("rate", "achieved_over_requested", "achieved / requested", "open loop: the generator kept up with the "
     "requested rate"),
)
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:20px auto;max-width:1120px;
color:#222;padding:0 12px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:16px 0 6px}.sub{color:#555;margin:0 0 14px}.sub b{color:#222}
.big{display:flex;flex-wrap:wrap;gap:10px}.big div{border:1px solid #ddd;border-radius:6px;padding:8px 14px;
min-width:130px}.big .v{font-size:26px;font-weight:600}.big .k{color:#666;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:10px}svg.chart{max-width:100%;height:auto;background:#fff}
table{border-collapse:collapse;margin:4px 0 10px;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:right;vertical-align:top}th{background:#f5f7fa}td.l,th.l{text-align:left}
.badge{display:inline-block;border-radius:4px;padding:1px 7px;color:#fff;font-weight:600;font-size:12px}
.green{background:#1a9641}.amber{background:#e08a00}.red{background:#d7191c}.na{background:#aaa}
code{font-size:12px}ul{margin:4px 0}.muted{color:#777}
"""


def fmt(v: object) -> str:
    """Numbers for tables: thousands separators, 3-4 significant figures, '—' for missing."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 10:
            return f"{v:.2f}"
        return f"{v:.3f}" if a >= 0.001 or v == 0 else f"{v:.2e}"
    return esc(v)


def table(head: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned text, the rest formatted numbers.
    Cells given as ('html', markup) are inserted as they are (badges)."""
    def cell(i: int, v: object, tag: str) -> str:
        cls = ' class="l"' if i < left else ""
        text = v[1] if isinstance(v, tuple) and v and v[0] == "html" else (esc(v) if i < left else fmt(v))
        return f"<{tag}{cls}>{text}</{tag}>"
    out = ["<table><tr>" + "".join(cell(i, h, "th") for i, h in enumerate(head)) + "</tr>"]
    out += ["<tr>" + "".join(cell(i, v, "td") for i, v in enumerate(row)) + "</tr>" for row in rows]
    return "\n".join(out + ["</table>"])


def badge(verdict: str, text: str = "") -> tuple[str, str]:
    cls = verdict if verdict in ("green", "amber", "red") else "na"
    return ("html", f'<span class="badge {cls}">{esc(text or verdict)}</span>')


def header(run: dict) -> str:
    cfg, env = run.get("config") or {}, run.get("env") or {}
    machine = ", ".join(str(x) for x in (env.get("cpu_model"), f"{env['cpus']} CPUs" if env.get("cpus") else None,
                                         env.get("platform")) if x)
    parts = [("target", cfg.get("target")), ("profile", cfg.get("profile")), ("model", cfg.get("model")),
             ("mode", cfg.get("mode")), ("machine", machine or None), ("date", env.get("started_at"))]
    line = " · ".join(f"{esc(k)} <b>{esc(v)}</b>" for k, v in parts if v not in (None, ""))
    return (f"<h1>Load report: {esc(cfg.get('profile', 'run'))} against {esc(cfg.get('target', '?'))}</h1>\n"
            f'<p class="sub">{line}</p>')


def headline(run: dict) -> str:
    stages = run.get("stages", [])
    best = max(stages, key=lambda s: sec.num((s.get("throughput") or {}).get("output_tok_s")) or -1.0, default=None)
    ok = sum((s.get("requests") or {}).get("ok", 0) for s in stages)
    err = sum((s.get("requests") or {}).get("error", 0) for s in stages)
    where = f"at {best.get('label')}" if best else ""

    def big(value: str, key: str) -> str:
        return f'<div><div class="v">{value}</div><div class="k">{esc(key)}</div></div>'

    tok = sec.num((best.get("throughput") or {}).get("output_tok_s")) if best else None
    items = [big(fmt(tok), f"best output tok/s {where}")]
    for metric, q, name in (("ttft_ms", "p50", "TTFT p50"), ("ttft_ms", "p99", "TTFT p99"), ("tpot_ms", "p50", "TPOT p50")):
        v = sec.stat(best, metric, q) if best else None
        items.append(big(fmt(v) + (" ms" if v is not None else ""), f"{name} {where}"))
    share = f" ({100.0 * err / (ok + err):.1f} %)" if ok + err else ""
    items.append(big(f'<span style="color:{"#d7191c" if err else "#1a9641"}">{fmt(err)}</span>',
                     f"errors of {ok + err:,} measured{share}"))
    worst = _worst(s.get("health", {}).get("verdicts", {}) for s in stages)
    items.append(big(badge(worst, worst)[1], "load generator health (worst)"))
    return '<div class="big">' + "".join(items) + "</div>"


def _worst(verdicts: Iterable[dict]) -> str:
    seen = {v for d in verdicts for v in (d or {}).values()}
    return next((v for v in ("red", "amber", "green") if v in seen), "n/a")


def _health_value(key: str, v: object) -> str:
    if v is None:
        return "n/a"
    return f"{fmt(100.0 * v)} %" if key == "zero_gap_fraction" and isinstance(v, (int, float)) else fmt(v)


def health_panel(run: dict) -> str:
    rows = []
    for s in run.get("stages", []):
        h = s.get("health") or {}
        verdicts = h.get("verdicts") or {}
        rows.append([s.get("label")] + [badge(verdicts.get(k, "n/a"), _health_value(vk, h.get(vk)))
                                        for k, vk, _, _ in CHECKS])
    out = ["<h2>Load generator health</h2>",
           '<p class="muted">Green means the figures below are the target\'s; amber or red means part of what was '
           "measured may be the client's own delay.</p>",
           table(["stage"] + [name for _, _, name, _ in CHECKS], rows)]
    explain = []
    for key, _, name, why in CHECKS:
        if key == "rate":
            rule = "red below 0.98"
        else:
            amber, red = THRESHOLDS[key]
            pct = 100 if key == "zero_gaps" else 1
            unit = " %" if key in ("cpu", "zero_gaps") else " ms" if "lag" in key else ""
            rule = f"amber above {amber * pct:g}{unit}" + (f", red above {red * pct:g}{unit}" if red != float("inf")
                                                           else "")
        explain.append(f"<li><b>{esc(name)}</b>: {esc(rule)}. {esc(why)}.</li>")
    out.append("<ul>" + "".join(explain) + "</ul>")
    return "\n".join(out)


def _status_badge(status: str) -> tuple[str, str]:
    return badge({"ok": "green", "missing": "red", "lost": "red"}.get(status, "amber"), status)


def worker_panel(run: dict) -> str:
    """One row per load-generator process: is each one inside the accuracy envelope, and how did it end."""
    rows = []
    for w in run.get("workers") or []:
        eps = w.get("events_per_s")
        env_badge = badge("n/a" if eps is None else "green" if w.get("within_envelope") else "red",
                          f"{fmt(eps)} / {fmt(w.get('envelope_events_per_s'))}")
        cpu = w.get("cpu_pct_max")
        off, unc = w.get("clock_offset_ms"), w.get("clock_uncertainty_ms")
        clock = "same machine" if not w.get("remote") else ("—" if off is None else f"{fmt(off)} ± {fmt(unc)}")
        rows.append([w["worker"] + (f" (probe {w['probe']})" if w.get("probe") is not None else ""),
                     _status_badge(w.get("status", "ok")), w.get("requests"),
                     badge("n/a" if cpu is None else verdict("cpu", cpu), f"{fmt(w.get('cpu_pct_mean'))} / {fmt(cpu)}"),
                     env_badge, badge(verdict("loop_lag", w.get("loop_lag_p99_ms")), fmt(w.get("loop_lag_p99_ms"))),
                     clock])
    if not rows:
        return ""
    return "\n".join([
        "<h2>Load generators</h2>",
        '<p class="muted">One row per worker process. Token events/s against the accuracy envelope (docs/load.md); '
        "clock offset: what was added to a remote worker's absolute times to put them on the master's clock, "
        "± half the round trip of the exchange it came from. Missing: locust's master lost its heartbeats; its "
        "records up to then are kept.</p>",
        table(["worker", "status", "requests", "CPU % mean / max", "token events/s / envelope", "loop lag p99 ms",
               "clock offset ms"], rows, left=2)])


def stage_tables(run: dict) -> str:
    stages = run.get("stages", [])
    over = []
    for s in stages:
        rq, tp, tk = s.get("requests") or {}, s.get("throughput") or {}, s.get("tokens") or {}
        slo = s.get("slo")
        slo_cell = "—" if not slo else ", ".join(f"{k}: {'pass' if v else 'FAIL'}" for k, v in slo.items())
        over.append([s.get("label"), slo_cell, s.get("window_s"), rq.get("ok"), rq.get("error"), rq.get("warmup"),
                     rq.get("incomplete"), tp.get("req_s"), tp.get("output_tok_s"), tp.get("requested_rate"),
                     tp.get("achieved_rate"), tp.get("in_flight_mean"), tk.get("server"), tk.get("client_events"),
                     tk.get("usage_diff_pct")])
    out = ["<h2>Stages</h2>",
           table(["stage", "SLO", "window s", "ok", "errors", "warm-up", "incomplete", "req/s", "output tok/s",
                  "requested req/s", "achieved req/s", "mean in flight", "tokens (server)", "token events",
                  "usage diff %"], over, left=2)]
    for s in stages:
        rows = []
        for name, summary in (s.get("metrics") or {}).items():
            rows.append([name] + ([summary.get(k) for k in STATS] if summary else ["no samples"] + [None] * 7))
        out.append(f"<h3>{esc(s.get('label'))}: per-request metrics (measured window)</h3>")
        out.append(table(["metric", *STATS], rows))
    return "\n".join(out)


def errors_and_warnings(run: dict) -> str:
    rows = []
    for s in run.get("stages", []):
        samples = "; ".join(str(x) for x in s.get("error_samples") or [])
        rows += [[s.get("label"), kind, samples, n] for kind, n in (s.get("errors") or {}).items()]
    out = ["<h2>Errors and warnings</h2>"]
    out.append(table(["stage", "kind", "examples", "count"], rows, left=3) if rows
               else '<p class="muted">No errors in the measured windows.</p>')
    warnings = run.get("warnings") or []
    out.append("<ul>" + "".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul>" if warnings
               else '<p class="muted">No warnings.</p>')
    search = run.get("slo_search")
    if search:
        out.append(f"<h3>SLO search: {esc(', '.join(search.get('slo') or []))}; best rate "
                   f"{fmt(search.get('best_rate'))} req/s</h3>")
        out.append(table(["rate req/s", "pass"], [[p.get("rate"), p.get("pass")] for p in search.get("probes") or []],
                         left=0))
    return "\n".join(out)


def _keyed(rows: Sequence[dict]) -> str:
    """A table whose columns are the keys of the dicts (formulas and aliases carry their own columns)."""
    if not rows:
        return '<p class="muted">none recorded</p>'
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return table(keys, [[r.get(k, "") for k in keys] for r in rows], left=len(keys))


def reference(run: dict) -> str:
    def kv(d: dict) -> str:
        return table(["key", "value"], [[k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)]
                                        for k, v in d.items()], left=2)
    return "\n".join(["<h2>Metric formulas</h2>", _keyed(run.get("formulas") or []),
                      "<h2>Metric names in other tools</h2>", _keyed(run.get("aliases") or []),
                      "<h2>Configuration</h2>", kv(run.get("config") or {}),
                      "<h2>Environment</h2>", kv(run.get("env") or {})])


def render_report(run: dict, requests: list[dict], timeseries: list[dict], health: list[dict]) -> str:
    """The whole page as a string."""
    by_stage = sec.measured(run, requests)

    def grid(charts: Sequence[str]) -> str:
        return '<div class="grid">' + "\n".join(charts) + "</div>"

    body = [
        header(run), headline(run), health_panel(run), worker_panel(run),
        "<h2>Latency vs load</h2>", grid(sec.latency_vs_load(run)),
        "<h2>Throughput vs load</h2>", grid(sec.throughput_vs_load(run)),
        "<h2>Distributions (measured window, ok requests)</h2>", grid(sec.cdfs(run, by_stage)),
        "<h2>Over time</h2>", grid(sec.over_time(run, timeseries, health, requests)),
        "<h2>Per-user speed vs total throughput; errors</h2>", grid([sec.pareto(run), sec.errors_chart(run)]),
        "<h2>Requests</h2>", sec.timeline(run, requests),
        stage_tables(run), errors_and_warnings(run), reference(run),
    ]
    title = f"wirecheck load: {(run.get('config') or {}).get('profile', '')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_report(out_dir: Path) -> Path:
    """Read run.json, requests.jsonl, timeseries.csv and health.jsonl from ``out_dir``; write report.html."""
    out_dir = Path(out_dir)
    run = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    ts_path = out_dir / "timeseries.csv"
    timeseries: list[dict] = []
    if ts_path.exists():
        with ts_path.open(encoding="utf-8", newline="") as f:
            timeseries = list(csv.DictReader(f))
    page = render_report(run, _jsonl(out_dir / "requests.jsonl"), timeseries, _jsonl(out_dir / "health.jsonl"))
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m wirecheck.load.report_html DIR   (rewrites DIR/report.html)", file=sys.stderr)
        return 2
    print(write_report(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
