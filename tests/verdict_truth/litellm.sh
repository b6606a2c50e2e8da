#!/usr/bin/env bash
# Verdict truth for a real gateway: the LiteLLM proxy in front of `wirecheck serve`, with wirecheck's suites pointed
# at the proxy exactly as a user would point them at their own gateway. Opt-in: it installs LiteLLM (once) and takes
# a couple of minutes. The failures it should report, each judged against OpenAI's and Anthropic's own behaviour,
# are listed in tests/verdict_truth/litellm.yaml; any other failure is either a LiteLLM change or a wrong verdict.
#
#   tests/verdict_truth/litellm.sh
#
# Environment:
#   LITELLM_VENV    venv holding the proxy (default .verdict-truth/litellm-venv; created with litellm[proxy]==1.108.*
#                   when it has no `litellm`). Kept apart from the project's venv: LiteLLM pins its own openai,
#                   httpx, fastapi... and must not change what the suites run with.
#   OUT             where the reports and logs go (default .verdict-truth/litellm)
#   WIRECHECK_VENV  the project's venv, which runs `wirecheck serve` and the suites (default .venv)
#   PYTHON          interpreter that creates LITELLM_VENV (default python3)
#
# Exit status: 0 when every suite run fails exactly the checks the manifest expects, 1 when they differ (each
# difference printed: a new failure to classify, or an expected one that no longer fails), other non-zero when
# something could not be started or a run broke before writing its report.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
wc_bin=$(realpath -m "${WIRECHECK_VENV:-.venv}")/bin
litellm_venv=$(realpath -m "${LITELLM_VENV:-.verdict-truth/litellm-venv}")
out=$(realpath -m "${OUT:-.verdict-truth/litellm}")
litellm_pin='litellm[proxy]==1.108.*'

say() { printf '[litellm.sh] %s\n' "$*" >&2; }

if [[ ! -x "$litellm_venv/bin/litellm" ]]; then
    say "installing $litellm_pin into $litellm_venv (once)"
    "${PYTHON:-python3}" -m venv "$litellm_venv"
    "$litellm_venv/bin/pip" install --quiet --disable-pip-version-check "$litellm_pin"
fi
litellm_version=$("$litellm_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')
[[ $litellm_version == 1.108.* ]] || { say "LITELLM_VENV has litellm $litellm_version, not 1.108.*"; exit 1; }

mkdir -p "$out"
rm -f "$out"/openai.json "$out"/anthropic.json "$out"/media.json
# Scratch space outside the checkout for pytest's and hypothesis' caches and LiteLLM's working directory.
work=$(mktemp -d "${TMPDIR:-/tmp}/verdict-truth-litellm.XXXXXX")

pids=()       # the two servers (wirecheck serve, LiteLLM)
suite_pid=    # the suite run in progress, if any
cleanup() {
    local status=$?
    local pid
    # Every process here is a single process (no workers, no reloader) started with exec: their pids are all.
    for pid in $suite_pid "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $suite_pid "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$wc_bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready URL PID WHAT LOG [curl args...]: until URL answers 2xx, failing fast if the process died.
wait_ready() {
    local url=$1 pid=$2 what=$3 log=$4 _
    shift 4
    for _ in $(seq 240); do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$what exited before it was ready; the end of $log:"
            tail -n 30 "$log" >&2
            return 1
        fi
        curl -sf -o /dev/null --max-time 5 "$@" "$url" && return 0
        sleep 1
    done
    say "$what was not ready after 240 s; see $log"
    return 1
}

serve_port=$(free_port)
say "starting wirecheck serve on 127.0.0.1:$serve_port"
"$wc_bin/wirecheck" serve --host 127.0.0.1 --port "$serve_port" >"$out/wirecheck-serve.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$serve_port/v1/models" "${pids[-1]}" "wirecheck serve" "$out/wirecheck-serve.log"

# A throwaway key per run: the suites must present it, and auth.enforced checks that anything else is refused.
master_key="sk-verdict-truth-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
config="$out/litellm-config.yaml"
cat >"$config" <<YAML
# Written by tests/verdict_truth/litellm.sh for one run; the master key is throwaway.
#
# Nothing beyond the model list is needed for the surfaces the suites check: an openai/ deployment serves
# /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /v1/responses by forwarding them to the
# upstream's routes of the same name, and serves Anthropic's /v1/messages by translating it into the upstream's
# Responses API (/v1/messages/count_tokens into /v1/responses/input_tokens).
model_list:
  - model_name: tiny
    litellm_params:
      model: openai/tiny
      api_base: http://127.0.0.1:$serve_port/v1
      api_key: unused   # wirecheck serve runs without auth, but LiteLLM's openai provider refuses to call without a key
  # The media run: chat with image_url / input_audio parts, and transcriptions (LiteLLM routes
  # /v1/audio/transcriptions to deployments whose mode is audio_transcription).
  - model_name: tiny-omni
    litellm_params:
      model: openai/tiny-omni
      api_base: http://127.0.0.1:$serve_port/v1
      api_key: unused
  - model_name: tiny-whisper
    litellm_params:
      model: openai/tiny-whisper
      api_base: http://127.0.0.1:$serve_port/v1
      api_key: unused
    model_info:
      mode: audio_transcription
  # A separate embeddings deployment, as gateways usually expose one; same upstream model.
  - model_name: tiny-embed
    litellm_params:
      model: openai/tiny
      api_base: http://127.0.0.1:$serve_port/v1
      api_key: unused
    model_info:
      mode: embedding
general_settings:
  master_key: $master_key
YAML

proxy_port=$(free_port)
say "starting LiteLLM $litellm_version on 127.0.0.1:$proxy_port"
# LITELLM_LOCAL_MODEL_COST_MAP: use the model map shipped in the wheel, not the one fetched from GitHub at start-up.
# LiteLLM decides from that map which parameters a model accepts, so a fetched map would let verdicts drift with
# the day (and the fetch stalls start-up by ~10 s on a machine without internet).
# PYTHON_DOTENV_DISABLED: LiteLLM calls load_dotenv(), which walks up from its install folder; with the default venv
# inside the checkout it would pick up a developer's .env (keys, LITELLM_* settings) and change the run.
(cd "$work" && LITELLM_LOCAL_MODEL_COST_MAP=True PYTHON_DOTENV_DISABLED=1 exec "$litellm_venv/bin/litellm" \
    --config "$config" --host 127.0.0.1 --port "$proxy_port") >"$out/litellm.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$proxy_port/v1/models" "${pids[-1]}" "LiteLLM" "$out/litellm.log" \
    -H "Authorization: Bearer $master_key"

{
    echo "litellm $litellm_version"
    "$wc_bin/python" - <<'PY'
import importlib.metadata as m
for name in ("wirecheck", "openai", "anthropic", "httpx", "pytest"):
    print(name, m.version(name))
PY
    echo "wirecheck commit $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)$(
        git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
} >"$out/versions.txt"

# run NAME ARGS...: one suite run against the proxy, its report in $out/NAME.json and its console in $out/NAME.log.
run() {
    local name=$1 status=0
    shift
    say "suite run '$name': $*"
    # From $work: pytest's cache and hypothesis' example database stay out of the checkout. In the background and
    # waited for, because bash runs a TERM trap only after a foreground command ends (a suite run takes a minute).
    (cd "$work" && exec "$wc_bin/pytest" -p no:cacheprovider -q --pyargs wirecheck.suites \
        --target "http://127.0.0.1:$proxy_port" --api-key "$master_key" "$@" --report "$out/$name.json") \
        >"$out/$name.log" 2>&1 &
    suite_pid=$!
    wait "$suite_pid" || status=$?
    suite_pid=
    # pytest exits 1 when checks fail, which is what this run is for; anything else means the run itself broke.
    if [[ $status -gt 1 || ! -s "$out/$name.json" ]]; then
        say "suite run '$name' broke (pytest exit $status); the end of $out/$name.log:"
        tail -n 30 "$out/$name.log" >&2
        return 1
    fi
    sed -n '/^-* wirecheck -*$/,/^=/p' "$out/$name.log" | sed '1d;$d' >&2
}

# Each run's arguments come from the manifest, and its report is compared with the failures the manifest expects.
# Models are named there because neither profile's default exists here: the openai profile would take the first
# listed model, the anthropic one claude-haiku-4-5.
manifest=tests/verdict_truth/litellm.yaml
verdict=0
for name in openai anthropic media; do
    # {here}: profiles shipped beside the manifest (the runs start in a scratch folder).
    mapfile -t args < <("$wc_bin/python" -c 'import sys
from tests.verdict_truth.manifest import HERE, load
print("\n".join(a.replace("{here}", str(HERE)) for a in load(sys.argv[1]).run(sys.argv[2]).args))' "$manifest" "$name")
    run "$name" "${args[@]}"
    "$wc_bin/python" -m tests.verdict_truth "$manifest" "$name" "$out/$name.json" || verdict=1
done

say "reports: $out/openai.json $out/anthropic.json $out/media.json"
exit "$verdict"
