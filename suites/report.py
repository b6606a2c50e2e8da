"""Compatibility matrix from a results dict (see results.Recorder.as_json): Markdown and HTML.

A JSON report renders again later, into as many formats as wanted:

    python -m wirecheck.suites.report wirecheck.json wirecheck.html wirecheck.md
"""

from __future__ import annotations

import html as _html
import json
import sys
from collections import defaultdict
from typing import Any

MARK = {"pass": "✅ pass", "fail": "❌ fail", "not-claimed": "➖ not claimed", "inconclusive": "❔ inconclusive",
        "not-run": "⏭ not run"}


def _rows(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_surface: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in results["checks"]:
        by_surface[record["surface"]].append(record)
    return dict(sorted(by_surface.items()))


def markdown(results: dict[str, Any]) -> str:
    summary = results["summary"]
    lines = ["# wirecheck compatibility report", "",
             " · ".join(f"{k}: {v}" for k, v in sorted(summary.items())), ""]
    for surface, records in _rows(results).items():
        lines += [f"## {surface}", "", "| check | path | result | detail |", "|---|---|---|---|"]
        for r in records:
            detail = (r["message"] or "").replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| `{r['id']}` | {r['path']} | {MARK.get(r['result'], r['result'])} | {detail} |")
        lines.append("")
    failures = [r for r in results["checks"] if r["result"] == "fail"]
    if failures:
        lines += ["## Evidence", ""]
        for r in failures:
            lines += [f"### `{r['id']}` ({r['path']})", "", r["rationale"], "", r["message"], ""]
            if r.get("evidence"):
                lines += ["```json", json.dumps(r["evidence"], indent=2)[:6000], "```", ""]
    return "\n".join(lines)


def html(results: dict[str, Any]) -> str:
    e = _html.escape
    parts = ["<!doctype html><meta charset=utf-8><title>wirecheck report</title>",
             "<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:left}.pass{background:#e6f4ea}.fail{background:#fce8e6}"
             ".not-claimed,.not-run{color:#777}.inconclusive{background:#fef7e0}pre{white-space:pre-wrap;"
             "background:#f6f6f6;padding:8px;max-height:30em;overflow:auto}</style>",
             "<h1>wirecheck compatibility report</h1>",
             "<p>" + " · ".join(f"{e(k)}: {v}" for k, v in sorted(results["summary"].items())) + "</p>"]
    for surface, records in _rows(results).items():
        parts.append(f"<h2>{e(surface)}</h2><table><tr><th>check</th><th>path</th><th>result</th><th>detail</th></tr>")
        for r in records:
            detail = e(r["message"] or "")
            if r.get("evidence"):
                detail += "<details><summary>evidence</summary><pre>" + e(json.dumps(r["evidence"], indent=2)) + "</pre></details>"
            parts.append(f"<tr class='{e(r['result'])}'><td title='{e(r['rationale'])}'><code>{e(r['id'])}</code></td>"
                         f"<td>{e(r['path'])}</td><td>{e(MARK.get(r['result'], r['result']))}</td><td>{detail}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)


FORMATS = {".json": lambda results: json.dumps(results, indent=2), ".md": lambda results: markdown(results),
           ".html": lambda results: html(results), ".htm": lambda results: html(results)}


def render(results: dict[str, Any], suffix: str) -> str:
    """The report in the format a file suffix names; ValueError for any other suffix."""
    if suffix not in FORMATS:
        raise ValueError(f"a report must end in .json, .md or .html, got {suffix or 'no suffix'!r}")
    return FORMATS[suffix](results)


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m wirecheck.suites.report RESULTS.json OUT.html|OUT.md|OUT.json ...", file=sys.stderr)
        return 2
    try:
        results = json.loads(Path(args[0]).read_text())
        for out in map(Path, args[1:]):
            out.write_text(render(results, out.suffix))
    except (OSError, ValueError, KeyError) as exc:
        print(f"wirecheck report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
