"""Verdict truth on a real third-party server: the suites against `transformers serve` fail exactly the checks
tests/verdict_truth/transformers-serve.yaml lists, each with the wire fact that makes it a real defect.

`transformers serve` ships in transformers (a dependency of the server extra) and serves the embedded tiny model
offline. A check that newly fails on it, or stops failing, fails this test: a false positive or a lost true one.
The LiteLLM proxy gets the same treatment from an opt-in script (tests/verdict_truth/litellm.sh): its install is
too heavy for every CI run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirecheck.suites.serve import ReferenceServer

from .fault_harness import load_checks
from .verdict_truth.manifest import HERE, Expected, ManifestError, Run, compare, load

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "reference_server" / "models" / "tiny"
MANIFEST = HERE / "transformers-serve.yaml"
AUDIO_MANIFEST = HERE / "transformers-serve-audio.yaml"
SUITE_TIMEOUT = 300  # seconds; a run takes about 20 on 2 cores


# ------------------------------------------------------------------------------------------- the manifests


@pytest.mark.parametrize("path", sorted(HERE.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_names_registered_checks_and_says_why(path: Path) -> None:
    manifest = load(path, known_checks=set(load_checks()))
    assert manifest.target.get("name") and manifest.target.get("version") and manifest.target.get("start")
    assert all(run.failures for run in manifest.runs), "a run that expects nothing proves nothing"


def test_a_manifest_without_the_wire_fact_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("target: {name: x, version: '1', start: x}\nruns:\n  - name: openai\n    failures:\n"
                    "      chat.n.choices: {observed: 'n=2 gave one choice', contract: ''}\n")
    with pytest.raises(ManifestError, match="contract"):
        load(path)


def _report(**results: str) -> dict:
    return {"checks": [{"id": cid, "result": result, "message": f"{cid} said so" if result == "fail" else ""}
                       for cid, result in results.items()]}


def test_an_intermittent_failure_may_pass_but_is_still_classified() -> None:
    flaky = Expected("completions.stream.stable-id", "created changes across a second", "OpenAI keeps it", True)
    run = Run("openai", (), {flaky.check_id: flaky})
    assert compare(run, _report(**{flaky.check_id: "pass"})) == []
    assert compare(run, _report(**{flaky.check_id: "fail"})) == []


def test_compare_names_new_and_lost_failures() -> None:
    run = Run("openai", (), {"chat.n.choices": Expected("chat.n.choices", "n=2 gave one choice", "OpenAI gives n")})
    assert compare(run, _report(**{"chat.n.choices": "fail", "chat.stream.done-sentinel": "pass"})) == []
    new = compare(run, _report(**{"chat.n.choices": "fail", "chat.stream.done-sentinel": "fail"}))
    assert len(new) == 1 and new[0].startswith("chat.stream.done-sentinel fails") and "said so" in new[0]
    lost = compare(run, _report(**{"chat.n.choices": "pass"}))
    assert len(lost) == 1 and "chat.n.choices is expected to fail" in lost[0] and "(pass)" in lost[0]


# ---------------------------------------------------------------------------------- transformers serve, live


@pytest.fixture(scope="module")
def transformers_serve():
    for module in ("fastapi", "accelerate"):
        # Installed by the dev extra (.ci/run): a missing one is a broken install, never a reason to skip.
        assert importlib.util.find_spec(module), f"`transformers serve` needs {module}: pip install -e '.[server,dev]'"
    yield from _transformers_serve(str(TINY))


@pytest.mark.parametrize("run", [r.name for r in load(MANIFEST).runs])
def test_transformers_serve_fails_exactly_what_the_manifest_says(transformers_serve, run: str,
                                                                 tmp_path: Path) -> None:
    _fails_exactly(transformers_serve, MANIFEST, run, tmp_path)


@pytest.fixture(scope="module")
def transformers_serve_whisper():
    """`transformers serve` pinned to the embedded tiny-whisper, for /v1/audio/transcriptions. Started in the
    models folder with the relative id, so that the id clients send ("tiny-whisper") is the one it is pinned to."""
    yield from _transformers_serve("tiny-whisper", cwd=TINY.parent)


@pytest.mark.parametrize("run", [r.name for r in load(AUDIO_MANIFEST).runs])
def test_transformers_serve_transcriptions_fail_exactly_what_the_manifest_says(transformers_serve_whisper, run: str,
                                                                               tmp_path: Path) -> None:
    for module in ("soundfile", "soxr"):  # transformers[audio]: its upload decoding (the dev extra installs them)
        assert importlib.util.find_spec(module), f"`transformers serve` transcriptions need {module}"
    _fails_exactly(transformers_serve_whisper, AUDIO_MANIFEST, run, tmp_path)


def _transformers_serve(model: str, cwd: Path | None = None) -> Iterator[ReferenceServer]:
    """`transformers serve` pinned to `model`, on the CPU and offline, until the fixture ends."""
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1",
               "--device", "cpu", "--log-level", "warning", model]
    server = ReferenceServer(command=command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=cwd)
    try:
        server.wait_ready(timeout=180)
        yield server
    finally:
        server.stop()


def _fails_exactly(server: ReferenceServer, manifest: Path, run: str, tmp_path: Path) -> None:
    expected = load(manifest).run(run)
    report = tmp_path / f"{run}.json"
    args = [a.replace("{here}", str(HERE)) for a in expected.args]  # profiles shipped beside the manifests
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "wirecheck.suites", "-q", "-p", "no:cacheprovider",
         "--target", server.base_url, "--report", str(report), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    assert report.exists(), f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    problems = compare(expected, json.loads(report.read_text()))
    installed, pinned = importlib.metadata.version("transformers"), load(manifest).target["version"]
    changed = "" if installed == pinned else f" (transformers {installed} is installed; the manifest is for {pinned})"
    assert not problems, f"against transformers serve{changed}:\n" + "\n".join(problems)
