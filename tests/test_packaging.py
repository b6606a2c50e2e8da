"""The install lands in one namespace and the base install works without the model stack.

These run the source tree; `.ci/wheel-test` repeats the user-facing parts against a built wheel in clean
virtual environments.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
# The repository folders that install as wirecheck.<folder>: importing them by their bare name would work in
# this checkout and break (or collide with the user's own `spec`/`load`) once installed.
BARE = {name.split(".")[1] for name in SETUPTOOLS["package-dir"] if name.count(".") == 1}


def _package_dir(package: str) -> pathlib.Path:
    """Where a package's sources live, by the package-dir mapping (longest prefix wins)."""
    mapping = SETUPTOOLS["package-dir"]
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in mapping:
            return ROOT / mapping[prefix] / pathlib.Path(*parts[cut:])
    return ROOT / pathlib.Path(*parts)


def _shipped_sources() -> list[pathlib.Path]:
    return sorted(p for pkg in SETUPTOOLS["packages"] for p in _package_dir(pkg).glob("*.py"))


def test_bare_folder_names_are_known() -> None:
    assert BARE == {"spec", "suites", "load", "fixtures", "reference_server"}


def test_every_package_folder_is_shipped() -> None:
    """A folder with an __init__.py that pyproject does not list would be missing from the wheel."""
    listed = {_package_dir(pkg).resolve() for pkg in SETUPTOOLS["packages"]}
    roots = {ROOT / d for d in SETUPTOOLS["package-dir"].values()}
    found = {init.parent.resolve() for r in roots for init in r.rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject: {sorted(map(str, found - listed))}"
    assert all((d / "__init__.py").is_file() for d in listed)


def test_no_shipped_module_imports_a_bare_folder_name() -> None:
    offenders = []
    for path in _shipped_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in BARE]
    assert offenders == []


def _python(code: str, *, cwd: pathlib.Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout)


# Makes the model stack unimportable in the child process, as in an install without the extra: a None entry
# in sys.modules makes `import torch` raise ImportError and importlib.util.find_spec("torch") answer None.
BLOCK_SERVER_EXTRA = (
    "import sys\n"
    "for _name in ('torch', 'transformers', 'tokenizers', 'safetensors', 'llguidance'):\n"
    "    sys.modules[_name] = None\n"
)


@pytest.mark.parametrize("command", ["lint-stream", "proxy", "load"])
def test_light_commands_do_not_import_the_model_stack(command: str, tmp_path: pathlib.Path) -> None:
    code = ("import sys\nfrom wirecheck.cli import build_parser\n"
            f"build_parser([{command!r}])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')\n"
            "               or m.startswith('wirecheck.reference_server.engine'))\n"
            "print(heavy)\n")
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_without_the_server_extra_says_what_to_install(tmp_path: pathlib.Path) -> None:
    code = BLOCK_SERVER_EXTRA + "from wirecheck.cli import main\nsys.exit(main(['serve', '--port', '0']))\n"
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "pip install 'wirecheck[server]'" in lines[0] and "torch" in lines[0]


def test_suites_without_target_or_server_extra_is_a_usage_error(tmp_path: pathlib.Path) -> None:
    code = BLOCK_SERVER_EXTRA + (
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--pyargs', 'wirecheck.suites', '-k', 'models']))\n")
    done = _python(code, cwd=tmp_path, timeout=300)
    assert done.returncode == 4, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "--target" in out and "wirecheck[server]" in out
    assert "Traceback" not in out


def test_installed_names_do_not_shadow_a_users_packages(tmp_path: pathlib.Path) -> None:
    """A user's own `spec` and `fixtures` packages stay theirs when wirecheck is imported beside them."""
    for name in ("spec", "fixtures", "load"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"OWNER = 'user:{name}'\n")
    code = ("import sys; sys.path.insert(0, '.')\n"
            "import wirecheck.suites.plugin, wirecheck.load.command\n"
            "import spec, fixtures, load\n"
            "print(spec.OWNER, fixtures.OWNER, load.OWNER)\n")
    done = _python(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["user:spec", "user:fixtures", "user:load"]
