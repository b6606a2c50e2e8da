"""The schemathesis campaign generates the same cases whatever else is loaded: hypothesis harvests literals from
every local module (the user's code, an editable wirecheck) and mixes them into generation, so without
`only_hypothesis_constants` a verdict moved when unrelated source changed (a transformers-serve 500 was found or
missed depending on a string added elsewhere). Two fresh processes, one with extra literals loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import copy, json, sys
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from wirecheck import spec
    from wirecheck.suites.fuzz import only_hypothesis_constants
    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
        import extra_literals  # noqa: F401 - a local module whose literals hypothesis would harvest
    schema = schemathesis.openapi.from_dict(copy.deepcopy(spec.document()), config=schemathesis.Config())
    op = next(r.ok() for r in schema.get_all_operations() if r.ok().path == "/v1/chat/completions")
    out = []

    @settings(max_examples=30, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def drive(case):
        out.append(json.dumps(case.body, sort_keys=True, default=str))

    with only_hypothesis_constants():
        drive()
    print(json.dumps(out))
""")


def cases(tmp_path: Path, extra: bool) -> list[str]:
    args = [sys.executable, "-c", SCRIPT] + ([str(tmp_path)] if extra else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_generated_cases_do_not_depend_on_loaded_literals(tmp_path: Path) -> None:
    (tmp_path / "extra_literals.py").write_text(
        'WORDS = ["zebra-literal", "messages", "tool_choice", "quantization"]\nNUMBERS = [987654321, 31337, 2.5]\n')
    plain, loaded = cases(tmp_path, False), cases(tmp_path, True)
    assert len(plain) >= 20
    assert plain == loaded
