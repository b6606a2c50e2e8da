"""Run action.yml's shell steps locally, the way a GitHub runner runs a composite action, so CI tests the
Action users call and not a copy of its commands.

    python .ci/run_action.py action.yml --input target=http://127.0.0.1:8000 --input source=dist/x.whl \
        --workspace DIR --temp DIR

What is emulated: inputs with defaults, `${{ }}` expressions over inputs/github/runner/steps (string
literals, ==, !=, &&, ||, always(), success(), failure()), each step's `if:`, env, $GITHUB_OUTPUT,
$GITHUB_STEP_SUMMARY and $GITHUB_ACTION_PATH, and the composite rule that a failed step skips later steps
unless their `if:` says always(). What is not: `uses:` steps (setup-python and upload-artifact are GitHub's
own actions; they are listed as skipped and `python` on PATH is the interpreter running this script).
Exit status: the first failed step's, else 0. Outputs are printed as `output NAME=VALUE`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|\(|\))|(?P<word>[A-Za-z_][\w.\-()]*))")


class Evaluator:
    """GitHub's expression language, the part action.yml uses: precedence || < && < ==/!= < operand."""

    def __init__(self, context: dict[str, object], status: dict[str, bool]) -> None:
        self.context, self.status = context, status

    def __call__(self, text: str) -> object:
        self.tokens, at = [], 0
        while text[at:].strip():
            match = TOKEN.match(text, at)
            if match is None:
                raise ValueError(f"unsupported expression at {text[at:]!r}")
            self.tokens.append(match)
            at = match.end()
        self.pos = 0
        value = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"unsupported expression: {text!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos].group(0).strip() if self.pos < len(self.tokens) else None

    def _or(self) -> object:
        return self._chain("||", self._and, lambda left, right: left or right)

    def _and(self) -> object:
        return self._chain("&&", self._compare, lambda left, right: left and right)

    def _chain(self, op: str, operand, combine) -> object:
        """`operand (op operand)*`, folded left to right (the right side is parsed even when short-circuited)."""
        left = operand()
        while self._peek() == op:
            self.pos += 1
            left = combine(left, operand())
        return left

    def _compare(self) -> object:
        left = self._operand()
        while self._peek() in ("==", "!="):
            op = self.tokens[self.pos].group(0).strip()
            self.pos += 1
            right = self._operand()
            equal = str(left).lower() == str(right).lower()  # GitHub compares strings case-insensitively
            left = equal if op == "==" else not equal
        return left

    def _operand(self) -> object:
        token = self.tokens[self.pos]
        self.pos += 1
        if token.group("str") is not None:
            return token.group("str")[1:-1].replace("''", "'")
        if token.group("op") == "(":
            value = self._or()
            self.pos += 1  # ")"
            return value
        word = token.group("word")
        if word in ("always()", "success()", "failure()"):
            return {"always()": True, "success()": not self.status["failed"],
                    "failure()": self.status["failed"]}[word]
        value: object = self.context
        for part in word.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value


def substitute(text: str, evaluate: Evaluator) -> str:
    return EXPRESSION.sub(lambda m: _string(evaluate(m.group(1).strip())), text)


def _string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def read_outputs(path: pathlib.Path) -> dict[str, str]:
    """`name=value` lines (the heredoc form `name<<EOF` is not used by our action)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines if "=" in line)


def run(action_path: pathlib.Path, inputs: dict[str, str], workspace: pathlib.Path, temp: pathlib.Path) -> int:
    action = yaml.safe_load(action_path.read_text())
    declared = action.get("inputs", {})
    unknown = set(inputs) - set(declared)
    if unknown:
        raise SystemExit(f"unknown inputs: {sorted(unknown)}")
    values = {name: inputs.get(name, spec.get("default", "")) for name, spec in declared.items()}
    missing = [name for name, spec in declared.items() if spec.get("required") and not values[name]]
    if missing:
        raise SystemExit(f"required inputs missing: {missing}")
    steps: dict[str, dict[str, dict[str, str]]] = {}
    context = {"inputs": values, "steps": steps,
               "github": {"action_path": str(action_path.parent.resolve()), "workspace": str(workspace)},
               "runner": {"temp": str(temp)}}
    status = {"failed": False}
    evaluate = Evaluator(context, status)
    first_failure = 0
    summary = temp / "step-summary.md"
    bin_dir = pathlib.Path(tempfile.mkdtemp(dir=temp))
    (bin_dir / "python").symlink_to(sys.executable)
    for number, step in enumerate(action["runs"]["steps"], 1):
        name = step.get("name") or step.get("uses") or f"step {number}"
        condition = str(step.get("if", "success()"))
        if not evaluate(EXPRESSION.sub(lambda m: m.group(1), condition)):
            print(f"--- skipped (if: {condition}): {name}", flush=True)
            continue
        if "uses" in step:
            print(f"--- not emulated (uses: {step['uses']}): {name}", flush=True)
            continue
        output = temp / f"output-{number}"
        output.write_text("")
        env = {**os.environ, "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp),
               "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
               "GITHUB_ACTION_PATH": str(action_path.parent.resolve()),
               "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.update({key: substitute(str(value), evaluate) for key, value in step.get("env", {}).items()})
        print(f"--- run: {name}", flush=True)
        code = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               substitute(step["run"], evaluate)], env=env, cwd=workspace).returncode
        if "id" in step:
            steps[step["id"]] = {"outputs": read_outputs(output), "outcome": "failure" if code else "success"}
        if code:
            print(f"--- failed with exit status {code}: {name}", flush=True)
            status["failed"] = True
            first_failure = first_failure or code
    for name, spec in action.get("outputs", {}).items():
        print(f"output {name}={substitute(str(spec.get('value', '')), evaluate)}")
    return first_failure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", type=pathlib.Path)
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--workspace", type=pathlib.Path, required=True)
    parser.add_argument("--temp", type=pathlib.Path, required=True)
    args = parser.parse_args()
    inputs = dict(item.split("=", 1) for item in args.input)
    args.temp.mkdir(parents=True, exist_ok=True)
    return run(args.action, inputs, args.workspace.resolve(), args.temp.resolve())


if __name__ == "__main__":
    sys.exit(main())
