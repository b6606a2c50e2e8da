"""report.html and its SVG charts, from a fabricated three-stage run (no server, no locust)."""

from __future__ import annotations

import csv
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

from wirecheck.load import charts
from wirecheck.load.aliases import ALIASES, FORMULAS
from wirecheck.load.report_html import main, render_report, write_report
from wirecheck.load.report_sections import sample
from wirecheck.load.stats import summarize

NS, MS = 1_000_000_000, 1_000_000
T0 = 1_763_800_000 * NS
TARGET = "http://127.0.0.1:8000"
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class Strict(HTMLParser):
    """Fails on unbalanced or mis-nested tags, which html.parser alone tolerates."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()


def parse(page: str) -> Strict:
    p = Strict()
    p.feed(page)
    p.close()
    assert not p.stack, f"unclosed: {p.stack}"
    return p


def fabricate(users=(1, 4, 16), stage_s=10.0, warmup_s=1.0, error_stage=1, target=TARGET, empty_stage=None,
              only_errors=False) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """A plausible closed-loop run: TTFT and gaps grow with users; some 429s in ``error_stage``."""
    rng = random.Random(7)
    records, stages, health = [], [], []
    for i, n in enumerate(users):
        start, end = i * stage_s, (i + 1) * stage_s
        mine = []
        for u in range(n if i != empty_stage else 0):
            t = start + rng.uniform(0, 0.2)
            while t < end - 0.5:
                send = T0 + int(t * NS)
                failed = only_errors or (i == error_stage and rng.random() < 0.1)
                if failed:
                    rec = {"stage": i, "send_ns": send, "ok": False, "status": 429, "error": "429 rate_limit: slow down",
                           "headers_ns": 2 * MS, "first_token_ns": None, "first_content_ns": None,
                           "last_token_ns": None, "done_ns": 3 * MS, "events": [], "n_events": 0, "usage_out": None}
                else:
                    ttft = int((40 + 4 * n + rng.expovariate(1 / 5)) * MS)
                    gaps = [int((8 + n / 2 + rng.expovariate(1)) * MS) for _ in range(31)]
                    times = [ttft]
                    for g in gaps:
                        times.append(times[-1] + g)
                    rec = {"stage": i, "send_ns": send, "ok": True, "status": 200, "error": None, "headers_ns": 2 * MS,
                           "first_token_ns": ttft, "first_content_ns": ttft, "last_token_ns": times[-1],
                           "done_ns": times[-1] + MS, "events": [[x, 1] for x in times], "n_events": 32,
                           "usage_out": 32}
                rec.update({"v": 1, "profile": "chat-stream", "worker": "host:1", "request_id": None, "lag_ns": None,
                            "usage_in": 12, "bytes": 4000, "max_tokens": 32})
                mine.append(rec)
                t += rec["done_ns"] / NS + 0.01
        measured = [r for r in mine if r["send_ns"] >= T0 + int((start + warmup_s) * NS)]
        ok = [r for r in measured if r["ok"]]
        errors = [r for r in measured if not r["ok"]]
        window = stage_s - warmup_s
        gaps = [(b[0] - a[0]) / MS for r in ok for a, b in zip(r["events"], r["events"][1:])]

        def summ(key, ok=ok):
            return summarize(r[key] / MS for r in ok)
        stages.append({
            "index": i, "label": f"{n} users", "users": n, "rate": None, "start_s": start, "end_s": end,
            "window_s": window,
            "requests": {"ok": len(ok), "error": len(errors), "warmup": len(mine) - len(measured), "incomplete": 0},
            "throughput": {"req_s": len(ok) / window, "output_tok_s": 32 * len(ok) / window, "requested_rate": None,
                           "achieved_rate": None, "in_flight_mean": n * 0.95},
            "metrics": {"ttft_ms": summ("first_token_ns"), "ttfo_ms": summ("first_content_ns"),
                        "ttfb_ms": summ("headers_ns"), "e2el_ms": summ("last_token_ns"),
                        "tpot_ms": summarize((r["last_token_ns"] - r["first_token_ns"]) / MS / 31 for r in ok),
                        "icl_ms": summarize(gaps), "ntpot_ms": None, "tokens_per_event": summarize(1.0 for _ in ok),
                        "output_tokens": summarize(32 for _ in ok), "schedule_lag_ms": None},
            "tokens": {"server": 32 * len(ok), "client_events": 32 * len(ok), "usage_diff_pct": 0.0},
            "errors": {"429": len(errors)} if errors else {},
            "error_samples": ["429 rate_limit: slow down"] if errors else [],
            "health": {"cpu_pct_max": 10.0 * (i + 1) * 2, "loop_lag_p99_ms": 0.5 * (i + 1),
                       "schedule_lag_p99_ms": None, "zero_gap_fraction": 0.0, "tokens_per_event_mean": 1.0,
                       "achieved_over_requested": None,
                       "verdicts": {"cpu": ["green", "green", "amber"][i % 3], "loop_lag": "green",
                                    "schedule_lag": "n/a", "zero_gaps": "green", "tokens_per_event": "green",
                                    "rate": "n/a"}},
            "slo": None})
        records += mine
        health += [{"worker": "host:1", "t_ns": T0 + int((start + s + 0.5) * NS), "cpu_pct": 10.0 * (i + 1),
                    "loop_lag_ms": [0.1, 0.2 * (i + 1)], "in_flight": n, "users": n} for s in range(int(stage_s))]
    records.sort(key=lambda r: r["send_ns"])
    run = {"schema": "wirecheck.load/1", "t0_ns": T0,
           "config": {"target": target, "profile": "chat-stream", "model": "tiny", "mode": "users",
                      "stages": [{"users": n} for n in users], "stage_duration_s": stage_s, "warmup_s": warmup_s,
                      "arrival": None, "workers": 1, "input_tokens": 12, "output_tokens": 32, "reader": "exact"},
           "env": {"wirecheck": "0.1.0", "locust": "2.47.0", "python": "3.11.7", "cpus": 2, "cpu_model": "Test CPU",
                   "platform": "Linux", "started_at": "2026-11-22T08:00:00Z", "rtt_ms": {"p50": 0.05, "max": 0.1}},
           "stages": stages, "slo_search": None, "formulas": FORMULAS, "aliases": ALIASES,
           "warnings": ["ttft_ms p99 from 120 samples (< 1000): treat as indicative"]}
    series = []
    for s in range(int(stage_s * len(users))):
        done = [r for r in records if T0 + s * NS <= r["send_ns"] + r["done_ns"] < T0 + (s + 1) * NS]
        series.append({"t_s": s, "stage": int(s // stage_s), "started": 3, "completed": sum(r["ok"] for r in done),
                       "errors": sum(not r["ok"] for r in done), "output_tokens": 32 * sum(r["ok"] for r in done),
                       "in_flight": users[int(s // stage_s)], "ttft_p50_ms": 50.0 + s, "ttft_p99_ms": 70.0 + s,
                       "cpu_pct_max": 10.0, "loop_lag_max_ms": ""})
    return run, records, series, health


def write_run(out: Path, run, records, series, health) -> None:
    (out / "run.json").write_text(json.dumps(run))
    (out / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "health.jsonl").write_text("".join(json.dumps(h) + "\n" for h in health))
    with (out / "timeseries.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(series[0]))
        w.writeheader()
        w.writerows(series)


def test_report_reads_as_a_page(tmp_path: Path) -> None:
    write_run(tmp_path, *fabricate())
    path = write_report(tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text()
    tags = parse(page).tags
    assert page.count("<svg") >= 15
    for label in ("1 users", "4 users", "16 users"):
        assert label in page
    for alias in ALIASES:
        assert all(charts.esc(v) in page for v in alias.values())
    assert "Time to First Token" in page and "vllm_bench" in page
    assert "t_first_token − t_send" in page
    assert "Load generator health" in page and 'class="badge amber"' in page
    assert "no data" not in page  # every chart had something to draw
    assert not any(t == "script" for t, _ in tags) and "<script" not in page.lower()
    assert set(re.findall(r"https?://[^\s<\"']+", page)) <= {TARGET}
    assert not any(a.get("src") or a.get("href") for _, a in tags)
    assert "429" in page and "rate_limit" in page


def test_script_mode_rewrites(tmp_path: Path, capsys) -> None:
    write_run(tmp_path, *fabricate(users=(2,)))
    assert main([str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()
    assert main([]) == 2


def test_text_is_escaped() -> None:
    evil = "http://x/<script>alert(1)</script>&\"'"
    run, records, series, health = fabricate(users=(1, 2), target=evil)
    run["warnings"].append("<b>bold</b>")
    run["stages"][0]["label"] = "<img src=x onerror=alert(1)>"
    page = render_report(run, records, series, health)
    parse(page)
    assert "<script" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_empty_stage_and_errors_only_runs_render() -> None:
    run, records, series, health = fabricate(users=(1, 4, 8), empty_stage=1)
    assert run["stages"][1]["metrics"]["ttft_ms"] is None
    page = render_report(run, records, series, health)
    parse(page)
    assert "4 users" in page and "no samples" in page

    run, records, series, health = fabricate(users=(2, 4), only_errors=True)
    assert all(s["requests"]["ok"] == 0 for s in run["stages"])
    page = render_report(run, records, series, health)
    parse(page)
    assert "no data" in page and "<svg" in page

    bare = {"config": {}, "stages": []}
    parse(render_report(bare, [], [], []))


def test_timeline_samples_at_most_300() -> None:
    recs = [{"send_ns": i} for i in range(1000)]
    picked = sample(recs)
    assert len(picked) == 300 and picked[0] is recs[0] and picked[-1] is recs[-1]
    assert sample(recs[:10]) == recs[:10]


def test_axis_ticks_are_nice() -> None:
    a = charts.Axis([3.0, 97.0], zero=True)
    assert a.lo == 0 and a.hi == 100 and a.ticks == [0, 20, 40, 60, 80, 100]
    tight = charts.Axis([0.0, 8.4], tight=True)
    assert (tight.lo, tight.hi) == (0.0, 8.4) and tight.ticks == [0, 2, 4, 6, 8]
    single = charts.Axis([5.0])
    assert single.lo < 5 < single.hi
    log = charts.Axis([0.3, 250.0], log=True)
    assert log.lo < 0.3 and log.hi > 250 and log.ticks == [1.0, 10.0, 100.0] and log.frac(0.0) == 0.0
    assert charts.Axis([1.0, 4.0, 16.0], log=True).ticks == [1.0, 2.0, 5.0, 10.0, 20.0]
    assert charts.tick_label(25000.0) == "25k" and charts.tick_label(0.1 + 0.2) == "0.3"


def test_charts_edge_cases() -> None:
    assert "no data" in charts.line_chart([], title="t", x_label="x", y_label="y")
    assert "no data" in charts.cdf_chart([("a", [])], title="t", x_label="ms")
    assert "no data" in charts.bar_chart(["a"], [("s", [None])], title="t", y_label="n")
    assert "no data" in charts.timeline_chart([], [], title="t")
    one = charts.line_chart([charts.Series("<s>", [(1.0, 2.0)])], title="a<b", x_label="x", y_label="y")
    parse(one)
    assert "<circle" in one and "&lt;s&gt;" in one and "a&lt;b" in one
    nan = charts.line_chart([charts.Series("s", [(1.0, float("nan")), (2.0, None)])], title="t", x_label="x",
                            y_label="y")
    assert "no data" in nan
    cdf = charts.ecdf(list(range(10_000)))
    assert len(cdf) <= 300 and cdf[0] == (0, 1 / 10_000) and cdf[-1] == (9999, 1.0)
    bars = charts.bar_chart(["a", "b"], [("x", [1.0, 3.0]), ("y", [2.0, None])], title="t", y_label="n")
    parse(bars)
    assert bars.count("<rect") == 1 + 3
    tl = charts.timeline_chart([charts.Bar(0.0, 0.1, 0.5, 0.6, True), charts.Bar(0.2, None, None, 0.3, False)],
                               [charts.Band(0.0, 1.0, "s0")], title="t")
    parse(tl)
    assert "#d7191c" in tl


def test_report_from_the_real_analysis() -> None:
    """The schema analyse() writes, not only the fabricated one, renders (catches drift between the two)."""
    from wirecheck.load.analysis import analyse
    from wirecheck.load.plan import Plan, Stage

    run0, records, _, health = fabricate(users=(1, 4))
    plan = Plan(target=TARGET, profile="chat-stream", model="tiny", out_dir="/tmp/x", warmup_s=1.0,
                stages=(Stage(10.0, users=1), Stage(10.0, users=4)))
    run, series = analyse(plan, records, health, T0, run0["env"])
    page = render_report(json.loads(json.dumps(run)), records, series, health)
    parse(page)
    assert "1 user" in page and "4 users" in page and "no data" not in page.split("<h2>Over time")[0]


def test_open_loop_and_ramp_axes() -> None:
    run, records, series, health = fabricate(users=(1, 2, 4))
    for s, rate in zip(run["stages"], (4.0, 2.0, 8.0)):
        s.update(users=None, rate=rate, label=f"{rate:g} req/s")
        s["throughput"].update(requested_rate=rate, achieved_rate=rate * 0.97)
        s["health"]["verdicts"]["rate"] = "red"
    page = render_report(run, records, series, health)
    parse(page)
    assert "requested rate (req/s)" in page and "8 req/s" in page and 'class="badge red"' in page

    run, records, series, health = fabricate(users=(4,))
    run["config"]["stages"] = [{"users": 1, "ramp_to": 4}]
    page = render_report(run, records, series, health)
    assert ">stage</text>" in page and ">users</text>" not in page
