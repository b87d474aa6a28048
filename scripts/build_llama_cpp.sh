#!/usr/bin/env bash
# Compile llama.cpp once for both things the project needs: the llama-cpp-python wheel (in-process
# runtime) and llama.cpp's `llama-server` (the server llamafile 0.10+ ships), from the same sources
# vendored in llama-cpp-python's sdist, with the same flags. Results are cached per machine.
#
#   bash scripts/build_llama_cpp.sh             # builds once, then prints the cached paths
#   LLAMA_CPP_PYTHON_VERSION=0.3.36 bash scripts/build_llama_cpp.sh
#
# Output (last two lines): the wheel's path, then llama-server's path, both under
# ~/.cache/langchain-localllm/llama-cpp-<version>/. llama-server links the shared libraries of the
# same build (kept next to it), so the two runtimes are byte-for-byte the same llama.cpp.
# The web UI, its prebuilt download, libcurl and OpenSSL are disabled: nothing here needs network
# beyond the package index.
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE_ROOT="${LOCALLLM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/langchain-localllm}"
DEST="$CACHE_ROOT/llama-cpp-$VERSION"
WHEEL_DIR="$DEST/wheel"
BUILD_DIR="$DEST/build"
SERVER="$BUILD_DIR/bin/llama-server"

wheel_path() { find "$WHEEL_DIR" -maxdepth 1 -name "llama_cpp_python-$VERSION-*.whl" 2>/dev/null | head -n1; }

if [[ -n "$(wheel_path)" && -x "$SERVER" ]] && "$SERVER" --version >/dev/null 2>&1; then
    echo "llama.cpp $VERSION already built in $DEST" >&2
    wheel_path
    echo "$SERVER"
    exit 0
fi

need_tools=()
for tool in cmake g++ make; do command -v "$tool" >/dev/null 2>&1 || need_tools+=("$tool"); done
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

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$SCRIPT_DIR/../.venv/bin/python" ]]; then PY="$SCRIPT_DIR/../.venv/bin/python"; else PY=python3; fi
fi

mkdir -p "$DEST" "$WHEEL_DIR"
SDIST="$DEST/llama_cpp_python-$VERSION.tar.gz"
if [[ ! -f "$SDIST" ]]; then
    echo "downloading llama-cpp-python==$VERSION sdist" >&2
    tmp="$(mktemp -d)"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "llama-cpp-python==$VERSION" >&2
    mv "$(find "$tmp" -maxdepth 1 -name "llama[-_]cpp[-_]python-$VERSION.tar.gz" | head -n1)" "$SDIST"
    rm -rf "$tmp"
fi

# One CMake build: the libraries the wheel installs plus the llama-server target. Tools are not
# installed into the wheel (LLAMA_TOOLS_INSTALL stays off when llama.cpp is a subproject).
# LLAVA_BUILD=OFF: with the tools on, llama.cpp adds tools/mtmd itself (the server links it), and
# llama-cpp-python's second add_subdirectory of it would fail; the wheel then ships no libmtmd
# (llama-cpp-python's multimodal chat handlers), which this package does not use.
cmake_args="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
cmake_args+=" -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF"
echo "building llama-cpp-python $VERSION and llama-server in one compile (several minutes)" >&2
CMAKE_ARGS="$cmake_args ${CMAKE_ARGS:-}" \
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$PY" -m pip wheel --no-deps --wheel-dir "$WHEEL_DIR" \
        --config-settings=build-dir="$BUILD_DIR" \
        --config-settings=build.targets="llama-server;llama;ggml;ggml-base;ggml-cpu" \
        "$SDIST" >&2

if [[ -z "$(wheel_path)" || ! -x "$SERVER" ]]; then
    echo "error: the build finished without a wheel in $WHEEL_DIR or without $SERVER" >&2
    exit 1
fi
"$SERVER" --version >&2 || true
wheel_path
echo "$SERVER"
