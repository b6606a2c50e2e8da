"""The table `wirecheck load` prints when it is done."""

from __future__ import annotations

from pathlib import Path

_BADGE = {"green": "ok", "amber": "WARN", "red": "BAD", "n/a": "-"}


def _v(summary: dict | None, stat: str) -> str:
    return f"{summary[stat]:.1f}" if summary else "-"


def _n(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_summary(run: dict, out_dir: Path) -> None:
    cfg = run["config"]
    print(f"\n{cfg['profile']} against {cfg['target']} (model {cfg['model']}), {cfg['workers']} worker process(es)")
    head = (f"{'stage':>14} {'ok':>6} {'err':>5} {'req/s':>7} {'out tok/s':>10} {'TTFT p50':>9} {'p99':>8} "
            f"{'TPOT p50':>9} {'ICL p50':>8} {'E2EL p99':>9}  generator")
    print(head)
    for s in run["stages"]:
        m, t = s["metrics"], s["throughput"]
        bad = [k for k, v in s["health"]["verdicts"].items() if v in ("amber", "red")]
        health = ", ".join(f"{k} {_BADGE[s['health']['verdicts'][k]]}" for k in bad) or "ok"
        slo = "" if not s.get("slo") else ("  SLO met" if all(s["slo"].values()) else "  SLO missed")
        print(f"{s['label']:>14} {s['requests']['ok']:>6} {s['requests']['error']:>5} {_n(t['req_s'], 2):>7} "
              f"{_n(t['output_tok_s']):>10} {_v(m['ttft_ms'], 'p50'):>9} {_v(m['ttft_ms'], 'p99'):>8} "
              f"{_v(m['tpot_ms'], 'p50'):>9} {_v(m['icl_ms'], 'p50'):>8} {_v(m['e2el_ms'], 'p99'):>9}  {health}{slo}")
    if run.get("slo_search"):
        best = run["slo_search"]["best_rate"]
        print(f"highest rate meeting {', '.join(run['slo_search']['slo'])}: "
              f"{'none of the probed rates' if best is None else f'{best:g} req/s'}")
    for w in run["warnings"][:8]:
        print(f"note: {w}")
    print(f"times in ms; files in {out_dir}: run.json requests.jsonl stages.csv timeseries.csv report.html")
