"""The pytest plugin: `pytest --target=URL` (or no target: start `wirecheck serve` and check it).

Registered as a pytest11 entry point, so it loads in every pytest run of this environment; it stays
inert (no server, no network) unless a test asks for the `target` fixture.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .registry import CHECKS, CheckFailed, CheckInfo
from .results import Recorder
from .target import Profile, Target, load_profile, normalise_base_url

SUITES_DIR = Path(__file__).resolve().parent
KEY_ENV = ("WIRECHECK_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
# Surfaces a profile claims or not; errors, auth and http are judged wherever they apply.
API_SURFACES = ("chat", "completions", "embeddings", "models", "responses", "messages", "audio")
ANTHROPIC_SURFACES = {"messages"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wirecheck", "wirecheck conformance suites")
    group.addoption("--target", default=None, metavar="URL",
                    help="base URL of the endpoint to check, with or without /v1; without it, wirecheck "
                         "starts its reference server on a free loopback port")
    group.addoption("--api-key", default=None, metavar="KEY",
                    help="API key (else $WIRECHECK_API_KEY, $OPENAI_API_KEY or $ANTHROPIC_API_KEY)")
    group.addoption("--profile", default="openai", metavar="NAME|PATH",
                    help="what the target claims: a name in spec/profiles or a YAML path (default: openai)")
    group.addoption("--model", default=None, help="chat/completions model id (default: profile's, else the first listed)")
    group.addoption("--embedding-model", default=None, help="embeddings model id (default: --model)")
    group.addoption("--report", default=None, metavar="PATH", help="write results to PATH (.json, .html or .md)")
    group.addoption("--deadline", type=float, default=30.0,
                    help="seconds any one exchange may take, streams included (default: 30)")
    group.addoption("--fuzz-examples", type=int, default=5,
                    help="schemathesis/hypothesis examples per operation or property (default: 5)")


# `--strict` is pytest's own option (strict markers and config); wirecheck reads the same flag to also run
# the checks only pedantic clients need, so `pytest --target=URL --strict` means what it says.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wirecheck(id): a conformance check with a stable id")
    config._wirecheck_recorder = Recorder()  # type: ignore[attr-defined]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With --target only the suites run: the project's own tests are not about the target."""
    if not config.getoption("target"):
        return None
    contains = collection_path.resolve() in SUITES_DIR.parents
    return None if _in_suites(collection_path) or contains else True


def _in_suites(path: Path) -> bool:
    path = path.resolve()
    return path == SUITES_DIR or SUITES_DIR in path.parents


class SuiteModule(pytest.Module):
    """A suite module, imported under its package name (`wirecheck.suites.test_chat`).

    pytest names a collected file after the folders above it that hold an `__init__.py`. Installed, that is
    `wirecheck/suites/`, but in an editable checkout the package maps onto the repository's `suites/`, which
    pytest would import a second time as a top-level `suites` (and the checks would register twice)."""

    def _getobj(self):  # noqa: ANN202 - pytest's own hook point for how a module object is obtained
        relative = self.path.resolve().relative_to(SUITES_DIR).with_suffix("")
        module = importlib.import_module(".".join((__package__, *relative.parts)))
        self.config.pluginmanager.consider_module(module)
        return module


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    # A plain directory node: a Package would import the folder's __init__.py by its file-system name.
    return pytest.Dir.from_parent(parent, path=path) if _in_suites(path) else None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    return SuiteModule.from_parent(parent, path=module_path) if _in_suites(module_path) else None


def _check_id(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("wirecheck")
    return marker.kwargs.get("id") if marker else None


def _profile(config: pytest.Config) -> Profile:
    """The profile the run judges against; checking our own server with the default profile means checking
    everything it claims."""
    cached = getattr(config, "_wirecheck_profile", None)
    if cached is None:
        name = config.getoption("profile")
        cached = load_profile("reference" if not config.getoption("target") and name == "openai" else name)
        config._wirecheck_profile = cached  # type: ignore[attr-defined]
    return cached


def _api_key(config: pytest.Config) -> str | None:
    return config.getoption("api_key") or next((os.environ[k] for k in KEY_ENV if os.environ.get(k)), None)


def not_claimed(info: CheckInfo, profile: Profile) -> str | None:
    """Why the profile does not claim what a check needs (reported as not-claimed), or None."""
    if info.surface in API_SURFACES and info.surface not in profile.surfaces:
        return f"not-claimed: profile {profile.name!r} does not claim surface {info.surface}"
    if info.surface in ("errors", "auth") and not set(profile.surfaces) - ANTHROPIC_SURFACES:
        return (f"not-claimed: profile {profile.name!r} claims only Anthropic surfaces; the {info.surface} "
                f"checks judge OpenAI's paths and envelope (the messages.* checks judge Anthropic's)")
    missing = [c for c in info.claims if c not in profile.claims]
    if missing:
        return f"not-claimed: profile {profile.name!r} does not claim {', '.join(missing)}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    strict = config.getoption("strict")
    profile = None
    checks = 0
    for item in items:
        check_id = _check_id(item)
        if not check_id:
            continue
        checks += 1
        if CHECKS[check_id].strict and not strict:
            item.add_marker(pytest.mark.skip(reason="not-run: strict-only check (use --strict)"))
            continue
        try:
            profile = profile or _profile(config)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        if profile.auth_required and config.getoption("target") and not _api_key(config):
            fmt = f" (keys look like {profile.key_prefix}...)" if profile.key_prefix else ""
            raise pytest.UsageError(f"profile {profile.name!r} documents that every request needs an API key{fmt}: "
                                    f"pass --api-key or set ${KEY_ENV[0]}")
        # Decided before any fixture runs: a module's shared exchange must not be attempted on a surface the
        # target does not offer (it would error, not skip).
        reason = not_claimed(CHECKS[check_id], profile)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
    # Without --target the checks need `wirecheck serve`: on a base install, say so once, before any test runs.
    if checks and not config.getoption("target"):
        from wirecheck.extras import requirement_message

        if message := requirement_message("running the suites without --target (they start `wirecheck serve`)",
                                          "server"):
            raise pytest.UsageError(message + "; or pass --target URL to check a running endpoint")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    config = request.config
    url = config.getoption("target")
    profile = _profile(config)
    api_key = _api_key(config)
    server = None
    notes: list[str] = []
    if not url:
        from .serve import ReferenceServer

        # A vendor profile is checked against the reference server emulating that vendor, with a key in the
        # vendor's documented format unless one was given.
        emulate = ["--profile", profile.name] if profile.vendor else []
        if emulate and not api_key:
            api_key = profile.example_key()
        # The server enforces the key the suites send (from --api-key or any of KEY_ENV), so auth.enforced
        # judges a keyed server rather than failing on an open one when e.g. $OPENAI_API_KEY happens to be set.
        server = ReferenceServer(*emulate, *(["--api-key", api_key] if api_key else []))
        server.wait_ready()
        url = server.base_url
        notes.append(f"no --target: started `wirecheck serve {' '.join(emulate)}` at {url}"
                     + (" with the API key" if api_key else ""))
    try:
        base, note = normalise_base_url(url, profile.base_path)
        if note:
            notes.append(note)
        model = config.getoption("model") or (profile.models[0] if profile.models else None) or _first_model(
            base, api_key, profile, config.getoption("deadline"))
        embedding = config.getoption("embedding_model") or (
            profile.embedding_models[0] if profile.embedding_models else model)
        yield Target(base_url=base, api_key=api_key, profile=profile, model=model, embedding_model=embedding,
                     strict=config.getoption("strict"), deadline=config.getoption("deadline"), notes=notes,
                     responses_model=config.getoption("model") or _responses_model(profile))
    finally:
        if server is not None:
            server.stop()


def _responses_model(profile: Profile) -> str:
    """The first model the profile flags as serving /v1/responses, when it flags them at all."""
    flag = profile.vendor.get("responses_model_flag")
    return next((e["id"] for e in profile.model_entries if flag and e.get(flag)), "")


def _first_model(base: str, api_key: str | None, profile: Profile, deadline: float) -> str:
    from .wire import Wire

    # Through Wire, like every exchange: httpx.get would read a dripping or endless /models body for ever.
    probe = Target(base_url=base, api_key=api_key, profile=profile, model="", embedding_model="", deadline=deadline)
    wire = Wire(probe)
    try:
        ex = wire.get("models")
    finally:
        wire.close()
    try:
        if ex.error or ex.timed_out:
            raise ValueError(ex.describe())
        return ex.json()["data"][0]["id"]
    except Exception as exc:  # noqa: BLE001 - any failure here means we cannot guess
        raise pytest.UsageError(f"could not list models at {base}/models ({exc}); pass --model") from None


@pytest.fixture(scope="session")
def wire(target: Target):
    from .wire import Wire

    client = Wire(target)
    yield client
    client.close()


@pytest.fixture(scope="session")
def sdk(target: Target):
    """The official openai SDK, strict response validation on, retries off (checks count requests)."""
    openai = pytest.importorskip("openai")
    from .wire import sdk_http_client

    return openai.OpenAI(base_url=target.base_url, api_key=target.api_key or "wirecheck-no-key",
                         max_retries=0, timeout=target.deadline, _strict_response_validation=True,
                         http_client=sdk_http_client(openai, target))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    check_id = _check_id(item)
    if not check_id:
        return
    evidence = None
    if call.excinfo is not None and isinstance(call.excinfo.value, CheckFailed):
        evidence = call.excinfo.value.evidence
    recorder: Recorder = item.config._wirecheck_recorder  # type: ignore[attr-defined]
    recorder.add(check_id, item.nodeid, report, evidence)


def pytest_sessionfinish(session: pytest.Session) -> None:
    recorder: Recorder = session.config._wirecheck_recorder  # type: ignore[attr-defined]
    path = session.config.getoption("report")
    if path and recorder.records:
        recorder.write(Path(path))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    recorder: Recorder = config._wirecheck_recorder  # type: ignore[attr-defined]
    if recorder.records:
        terminalreporter.write_sep("-", "wirecheck")
        terminalreporter.write_line(recorder.summary_line())
        for line in recorder.failures():
            terminalreporter.write_line("  " + line)
