"""Check a built wheel holds exactly what the repository ships: every tracked file of the installed folders,
at its `wirecheck/...` path, and nothing else beside the dist-info (no tests, no top-level `spec`).

    python .ci/check_wheel.py dist/wirecheck-X-py3-none-any.whl
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tomllib
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def expected_files() -> set[str]:
    """Tracked files under each package-dir root, renamed to where the wheel puts them."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    expected = set()
    for path in tracked.splitlines():
        for package, folder in mapping.items():
            if path.startswith(folder + "/"):
                expected.add(package.replace(".", "/") + path[len(folder):])
    return expected


def main(wheel: str) -> int:
    names = {n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith("/")}
    dist_info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    shipped = names - dist_info
    expected = expected_files()
    problems = [f"missing from the wheel: {n}" for n in sorted(expected - shipped)]
    problems += [f"in the wheel but not a tracked file of an installed folder: {n}" for n in sorted(shipped - expected)]
    top_level = next((n for n in dist_info if n.endswith("top_level.txt")), None)
    if top_level is not None:
        tops = zipfile.ZipFile(wheel).read(top_level).decode().split()
        if tops != ["wirecheck"]:
            problems.append(f"top_level.txt lists {tops}, not just wirecheck")
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in dist_info if n.endswith("entry_points.txt"))).decode()
    for needed in ("wirecheck = wirecheck.cli:main", "wirecheck = wirecheck.suites.plugin"):
        if needed not in entry_points:
            problems.append(f"entry point missing: {needed}")
    for problem in problems:
        print(problem)
    print(f"wheel {pathlib.Path(wheel).name}: {len(shipped)} files under wirecheck/, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
