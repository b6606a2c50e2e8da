"""Rate search: the highest open-loop rate whose stage meets every SLO.

Each probe is its own locust run (its own folder under ``probes/``), so a probe that overloads the
target cannot leave a queue behind for the next one to inherit. A probe passes when every SLO holds
and the generator kept its schedule (schedule-lag verdict not red): a rate the client could not
deliver is not a rate the target sustained. The probes are then pooled into one run in ``out``.
"""

from __future__ import annotations

import copy
import csv
import json
from dataclasses import replace
from pathlib import Path

from .outputs import read_jsonl, write_run
from .plan import Plan, Stage
from .runner import run_plan, write_html
from .sweep import SLO, RateSearch

NS = 1_000_000_000


def probe_passes(stage: dict) -> bool:
    return bool(stage["slo"]) and all(stage["slo"].values()) and stage["health"]["verdicts"]["schedule_lag"] != "red"


def last_probe(search: RateSearch, rate: float) -> bool:
    """Whether the search ends after probing ``rate`` whatever its outcome (remote workers are told whether
    another run follows; when it depends on the outcome they are told one does, and wait for it a while)."""
    def ends(passed: bool) -> bool:
        s = copy.deepcopy(search)
        s.record(rate, passed)
        return s.next_rate() is None
    return ends(True) and ends(False)


def rate_search(base: Plan, duration: float, warmup: float, slos: list[SLO], env: dict, *, start: float,
                max_rate: float, steps: int, quiet: bool = False) -> dict:
    out_dir = Path(base.out_dir)
    search = RateSearch(start, max_rate, steps)
    probes: list[tuple[Path, dict]] = []
    while (rate := search.next_rate()) is not None:
        probe_dir = out_dir / "probes" / f"{len(probes):02d}"
        probe_dir.mkdir(parents=True, exist_ok=True)
        plan = replace(base, stages=(Stage(duration, rate=rate),), warmup_s=warmup, out_dir=str(probe_dir.resolve()),
                       more_runs=base.distributed and not last_probe(search, rate))
        run = run_plan(plan, probe_dir, env, slos, quiet=quiet)
        passed = probe_passes(run["stages"][0])
        search.record(rate, passed)
        probes.append((probe_dir, run))
        if not quiet:
            print(f"  probe {rate:g} req/s: {'meets' if passed else 'misses'} {', '.join(s.text for s in slos)}")
    return pool(out_dir, probes, search, slos)


def pool(out_dir: Path, probes: list[tuple[Path, dict]], search: RateSearch, slos: list[SLO]) -> dict:
    """One run.json (a stage per probe, in the order run) from the probes' own outputs."""
    t0 = probes[0][1]["t0_ns"]
    stages, requests, health, series = [], [], [], []
    for i, (probe_dir, run) in enumerate(probes):
        shift = (run["t0_ns"] - t0) / NS
        stage = {**run["stages"][0], "index": i, "start_s": run["stages"][0]["start_s"] + shift,
                 "end_s": run["stages"][0]["end_s"] + shift}
        stages.append(stage)
        requests += [{**r, "stage": i} for r in read_jsonl([probe_dir / "requests.jsonl"])]
        health += read_jsonl([probe_dir / "health.jsonl"])
        with (probe_dir / "timeseries.csv").open() as f:
            for row in csv.DictReader(f):
                series.append({**row, "t_s": round(float(row["t_s"]) + shift), "stage": i})
    first = probes[0][1]
    config = {**first["config"], "mode": "sweep", "stages": [{"rate": s["rate"]} for s in stages]}
    run = {**first, "config": config, "stages": stages,
           "slo_search": {"slo": [s.text for s in slos], "best_rate": search.best,
                          "probes": [{"rate": r, "pass": ok} for r, ok in search.probes]},
           "workers": [{**w, "probe": i} for i, (_, p) in enumerate(probes) for w in p.get("workers", [])],
           "warnings": [w for _, p in probes for w in p["warnings"]]}
    if search.best is None:
        run["warnings"].insert(0, f"no probed rate met {', '.join(s.text for s in slos)}")
    write_run(out_dir, run, series, requests, health)
    write_html(out_dir)
    (out_dir / "slo_search.json").write_text(json.dumps(run["slo_search"], indent=1))
    return run
