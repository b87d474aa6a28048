#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (the server llamafile 0.10+ ships) from the llama.cpp sources
# vendored in the llama-cpp-python sdist, and cache the binary per machine.
#
#   bash scripts/build_llama_server.sh            # builds once, then prints the cached path
#   LLAMA_CPP_PYTHON_VERSION=0.3.36 bash scripts/build_llama_server.sh
#
# Output: ~/.cache/langchain-localllm/llama-server-<version>/llama-server (last line printed is its path).
# Runs unattended on a fresh Debian machine (installs cmake/g++ with apt-get when missing and running as
# root). The web UI, its prebuilt download, libcurl and OpenSSL are disabled: the binary never needs network.
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE_ROOT="${LOCALLLM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/langchain-localllm}"
DEST_DIR="$CACHE_ROOT/llama-server-$VERSION"
DEST="$DEST_DIR/llama-server"
JOBS="${BUILD_JOBS:-2}"

if [[ -x "$DEST" ]] && "$DEST" --version >/dev/null 2>&1; then
    echo "llama-server already built: $DEST" >&2
    echo "$DEST"
    exit 0
fi

need_tools=()
command -v cmake >/dev/null 2>&1 || need_tools+=(cmake)
command -v g++ >/dev/null 2>&1 || need_tools+=(g++)
command -v make >/dev/null 2>&1 || need_tools+=(make)
if ((${#need_tools[@]})); then
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing build tools: ${need_tools[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        apt-get install -y -q "${need_tools[@]}" >&2
    else
        echo "error: missing build tools: ${need_tools[*]} (install them, e.g. 'apt-get install cmake g++ make')" >&2
        exit 1
    fi
fi

# Pick a Python with pip: the project venv if present, else python3.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$SCRIPT_DIR/../.venv/bin/python" ]]; then PY="$SCRIPT_DIR/../.venv/bin/python"; else PY=python3; fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
trap 'echo "error: build_llama_server.sh failed at line $LINENO (exit $?)" >&2' ERR

echo "downloading llama-cpp-python==$VERSION sdist" >&2
"$PY" -m pip download --quiet --no-deps --no-binary :all: --dest "$WORK" "llama-cpp-python==$VERSION" >&2
SDIST="$(find "$WORK" -maxdepth 1 -type f -name "llama[-_]cpp[-_]python-$VERSION.tar.gz" | head -n1)"
if [[ -z "$SDIST" ]]; then
    echo "error: sdist for llama-cpp-python==$VERSION not found in $WORK" >&2
    exit 1
fi
tar -xzf "$SDIST" -C "$WORK"
SRC="$(find "$WORK" -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -n1)"
if [[ -z "$SRC" || ! -d "$SRC/tools/server" ]]; then
    echo "error: vendor/llama.cpp/tools/server not found in the sdist" >&2
    exit 1
fi

# Only pass options this llama.cpp version knows (unknown -D options are harmless but noisy).
opts=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
      -DLLAMA_BUILD_SERVER=ON -DGGML_NATIVE=ON)
for opt in LLAMA_BUILD_UI LLAMA_USE_PREBUILT_UI LLAMA_OPENSSL LLAMA_CURL; do
    if grep -rqs --include=CMakeLists.txt --include='*.cmake' "\b$opt\b" "$SRC/CMakeLists.txt" "$SRC/tools" "$SRC/cmake" 2>/dev/null; then
        opts+=("-D$opt=OFF")
    fi
done
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi

echo "configuring: ${opts[*]}" >&2
cmake -S "$SRC" -B "$WORK/build" "${GEN[@]}" "${opts[@]}" >&2
echo "building llama-server with $JOBS jobs (several minutes)" >&2
cmake --build "$WORK/build" --target llama-server -j "$JOBS" >&2

BIN="$(find "$WORK/build" -type f -name llama-server -perm -u+x | head -n1)"
if [[ -z "$BIN" ]]; then
    echo "error: build finished but no llama-server binary found" >&2
    exit 1
fi
mkdir -p "$DEST_DIR"
install -m 0755 "$BIN" "$DEST.tmp"
mv -f "$DEST.tmp" "$DEST"
"$DEST" --version >&2 || true
echo "llama-server built: $DEST" >&2
echo "$DEST"
