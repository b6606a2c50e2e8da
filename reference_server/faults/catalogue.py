"""The fault catalogue: fixtures/faults/<name>.yaml, one wire fault each, and the checks that must catch it.

A fault file::

    name: missing-done                    # kebab-case, equals the file name
    surface: chat                         # chat | completions | embeddings | models | messages | errors | auth | http | responses
    description: what real servers did (and where: wire-breakages.md section)
    checks: [chat.stream.done-sentinel]   # check ids that must fail through it; [] for a benign control
    applies: {paths: [chat/completions], stream: true}   # API paths (fnmatch, relative to /v1, or to the root
                                          # where a vendor has no /v1: api/keys); stream:
                                          # true = streamed requests only, false = non-streamed only, absent = both
    transform: {kind: stream.drop-done, params: {}}
    select: [chat.stream.*]               # optional: what the self-test runs (default: the checks)
    auth: true                            # optional: needs an API key configured upstream
    hostile: true                         # optional: a transport fault; runs get a short deadline
    strict: true                          # optional: a finding only --strict makes (the self-test runs strict)
    profile: hoonify                      # optional: the profile the self-test checks (the server emulates it);
                                          # default reference
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wirecheck.fixtures import FIXTURES_DIR

from .transforms import TRANSFORMS

FAULTS_DIR = FIXTURES_DIR / "faults"
SURFACES = ("chat", "completions", "embeddings", "models", "errors", "auth", "http", "responses", "messages",
            "audio")
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
KEYS = {"name", "surface", "description", "checks", "applies", "transform", "select", "auth", "hostile", "source",
        "profile", "strict"}


@dataclass(frozen=True)
class Fault:
    name: str
    surface: str
    description: str
    checks: tuple[str, ...]
    kind: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    paths: tuple[str, ...] = ("*",)
    stream: bool | None = None
    select: tuple[str, ...] = ()
    auth: bool = False
    hostile: bool = False
    strict: bool = False
    source: str = ""
    profile: str = "reference"

    @property
    def benign(self) -> bool:
        return not self.checks

    @property
    def stage(self) -> str:
        return TRANSFORMS[self.kind].stage

    def applies(self, api_path: str, stream: bool) -> bool:
        """Whether this fault concerns a request to `api_path` (relative to /v1) with this stream flag."""
        if self.stream is not None and self.stream != stream:
            return False
        return any(fnmatch.fnmatchcase(api_path, pattern) for pattern in self.paths)


class CatalogueError(ValueError):
    pass


def _fault(path: Path) -> Fault:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogueError(f"{path.name}: not a mapping")
    unknown = set(data) - KEYS
    if unknown:
        raise CatalogueError(f"{path.name}: unknown keys {sorted(unknown)}")
    name = data.get("name")
    if name != path.stem or not NAME.match(str(name)):
        raise CatalogueError(f"{path.name}: name {name!r} must be kebab-case and equal the file name")
    if data.get("surface") not in SURFACES:
        raise CatalogueError(f"{path.name}: surface {data.get('surface')!r} not one of {SURFACES}")
    if not str(data.get("description") or "").strip():
        raise CatalogueError(f"{path.name}: no description")
    checks = data.get("checks")
    if not isinstance(checks, list) or not all(isinstance(c, str) and c for c in checks):
        raise CatalogueError(f"{path.name}: checks must be a list of check ids ([] for a benign control)")
    spec = data.get("transform")
    if not isinstance(spec, dict) or spec.get("kind") not in TRANSFORMS:
        raise CatalogueError(f"{path.name}: transform.kind {spec.get('kind') if isinstance(spec, dict) else spec!r} "
                             f"is not a known transform ({', '.join(sorted(TRANSFORMS))})")
    applies = data.get("applies") or {}
    paths = applies.get("paths", ["*"])
    if isinstance(paths, str):
        paths = [paths]
    stream = applies.get("stream")
    if stream not in (None, True, False):
        raise CatalogueError(f"{path.name}: applies.stream must be true, false or absent")
    select = data.get("select") or []
    if not checks and not select:
        raise CatalogueError(f"{path.name}: a benign control must say what it runs (select:)")
    return Fault(
        name=name, surface=data["surface"], description=" ".join(str(data["description"]).split()),
        checks=tuple(checks), kind=spec["kind"], params=dict(spec.get("params") or {}), paths=tuple(paths),
        stream=stream, select=tuple(select), auth=bool(data.get("auth", False)),
        hostile=bool(data.get("hostile", False)), strict=bool(data.get("strict", False)),
        source=str(data.get("source", "")),
        profile=str(data.get("profile", "reference")),
    )


NONE = Fault(name="none", surface="http", description="No fault: a transparent proxy.", checks=(),
             kind="transport.none", paths=())


def load_faults(directory: Path | None = None) -> dict[str, Fault]:
    """Every fault of the catalogue by name (sorted); raises CatalogueError on a malformed file."""
    directory = directory or FAULTS_DIR
    faults = {}
    for path in sorted(directory.glob("*.yaml")):
        fault = _fault(path)
        faults[fault.name] = fault
    if "none" in faults:
        raise CatalogueError("'none' is reserved for the transparent proxy")
    return faults


def get_fault(name: str, faults: dict[str, Fault] | None = None) -> Fault:
    if name == "none":
        return NONE
    faults = faults if faults is not None else load_faults()
    try:
        return faults[name]
    except KeyError:
        raise CatalogueError(f"no fault {name!r}; known: none, {', '.join(faults)}") from None
