#!/usr/bin/env bash
# Builds the llama.cpp CPU libraries from the pinned source (.native/llama.cpp, fetched by scripts/setup.sh) with
# OpenMP threading, into OUT, for llm-server's CPU serving:
#
#   scripts/build-llama-cpu.sh OUT              # every x86-64 CPU variant, picked at load time (images)
#   scripts/build-llama-cpu.sh OUT --native     # this machine's CPU only (faster to build)
#
# then run llm-server with KSERVE_NODE_NATIVE_DIR=OUT (or --native-dir OUT).
#
# Why: the bundled libraries (the node-llama-cpp npm build in .native/cpu) synchronise ggml's worker threads by
# spinning; with as many threads as cores, that spin competes with the HTTP side for the cores. With OpenMP the
# same server served about 40% more tokens/s at 8 and 32 streams on two cores (benchmarks/serving/RESULTS.md, 2026-12-03). The bundled
# libraries stay the default for tests and the quick start because they need no compiler and no build time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: scripts/build-llama-cpu.sh OUT [--native]}"
variant="${2:-}"
src="$root/.native/llama.cpp"
[ -f "$src/include/llama.h" ] || { echo "build-llama-cpu: $src is missing: run scripts/setup.sh first" >&2; exit 1; }
command -v cmake >/dev/null 2>&1 || { echo "build-llama-cpu: cmake is missing (apt-get install cmake g++)" >&2; exit 1; }

case "$variant" in
  # One variant, linked into libggml (ggml refuses GGML_NATIVE with loadable backends).
  --native) cpu=(-DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF) ;;
  # Every variant as a loadable backend (GGML_BACKEND_DL), as the bundled libraries and llama.cpp's own cpu image have it.
  "") cpu=(-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON) ;;
  *) echo "build-llama-cpu: unknown option $variant" >&2; exit 2 ;;
esac

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# The libraries find each other beside themselves ($ORIGIN), wherever OUT is.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_OPENMP=ON "${cpu[@]}" \
  -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >&2
# The library and, through ggml, every CPU backend.
cmake --build "$build" --target llama -j"$(nproc)" >&2

# Nothing half-built becomes visible: the libraries (with their versioned names) go to a sibling folder, then replace OUT.
tmp="$out.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
cp -a "$build"/bin/lib*.so* "$tmp/"
for lib in libggml-base.so libggml.so libllama.so; do
  [ -f "$tmp/$lib" ] || { echo "build-llama-cpu: $lib was not built" >&2; rm -rf "$tmp"; exit 1; }
done
ls "$tmp"/libggml-cpu*.so >/dev/null 2>&1 || { echo "build-llama-cpu: no CPU backend was built" >&2; rm -rf "$tmp"; exit 1; }
rm -rf "$out" && mv "$tmp" "$out"
echo "build-llama-cpu: OpenMP CPU libraries in $out: $(cd "$out" && ls | tr '\n' ' ')" >&2
