"""`wirecheck lint-stream` as users run it: every recorded real stream conforms (no false positives), a broken
one exits 1 naming the check, usage errors exit 2."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wirecheck.fixtures import transcript_files
from wirecheck.suites import lint

RECORDINGS = ([("chat", p) for p in transcript_files("openai-chat-stream", "*.sse")]
              + [("messages", p) for p in transcript_files("anthropic-messages-stream", "*.sse")]
              + [("messages", p) for p in transcript_files("anthropic-messages-stream", "*.txt")])


def wirecheck() -> list[str]:
    local = Path(sys.executable).with_name("wirecheck")
    if local.exists():
        return [str(local)]
    exe = shutil.which("wirecheck")
    return [exe] if exe else [sys.executable, "-m", "wirecheck"]


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*wirecheck(), "lint-stream", *args], input=stdin, capture_output=True, timeout=120)


def test_recordings_are_there():
    assert len([r for r in RECORDINGS if r[0] == "chat"]) >= 6
    assert len([r for r in RECORDINGS if r[0] == "messages"]) >= 4


@pytest.mark.parametrize(("surface", "path"), RECORDINGS, ids=[f"{s}-{p.name}" for s, p in RECORDINGS])
def test_recorded_stream_conforms(surface: str, path: Path):
    result = run_cli("--surface", surface, "--strict", str(path))
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "FAIL" not in out and "conforms" in out


def test_broken_chat_stream_exits_1_naming_the_check():
    recorded = transcript_files("openai-chat-stream", "*.sse")[0].read_bytes()
    broken = recorded.replace(b"data: [DONE]\n\n", b"")
    result = run_cli("--surface", "chat", "-", stdin=broken)
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "FAIL chat.stream.done-sentinel" in out
    assert "why: " in out  # the rationale travels with the verdict


def test_broken_messages_stream_exits_1_naming_the_check(tmp_path: Path):
    recorded = (transcript_files("anthropic-messages-stream", "*.sse")[0]).read_bytes()
    broken = tmp_path / "broken.sse"
    broken.write_bytes(recorded.replace(b"event: message_stop", b"event: message_stopped"))
    result = run_cli("--surface", "messages", "--quiet", str(broken))
    assert result.returncode == 1
    assert result.stdout.decode().split() == ["messages.stream.event-name-matches-type"]


@pytest.mark.parametrize("args", [("--surface", "chat", "/no/such/file.sse"), ("--surface", "grpc", "x"),
                                  ("x.sse",)])
def test_usage_errors_exit_2(args: tuple[str, ...]):
    assert run_cli(*args).returncode == 2


def test_main_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "s.sse"
    path.write_bytes(b'data: {"id":"x","object":"text_completion","created":1,"model":"m","choices":[{"text":"a",'
                     b'"index":0,"logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    assert lint.main(["--surface", "completions", str(path)]) == 0
    assert "conforms" in capsys.readouterr().out
    path.write_bytes(path.read_bytes().replace(b'"created":1', b'"created":1.5'))
    out = io.StringIO()
    args = _parse(["--surface", "completions", "-q", str(path)])
    assert lint.run(args, out) == 1
    assert out.getvalue().split() == ["completions.stream.chunk-schema"]


def _parse(argv: list[str]):
    import argparse

    parser = argparse.ArgumentParser()
    lint.configure(parser)
    return parser.parse_args(argv)
