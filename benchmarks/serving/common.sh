# Shared by the serving benchmarks, sourced from the repository root: the cache folder, llama-server built once
# from the bundled llama.cpp source (the commit of the libraries we load), our server and LoadBench built, the
# generated ~60M-parameter model, and starting, waiting for and stopping the servers.
cache="${KSERVE_NODE_CACHE:-$HOME/.cache/kserve-node}"
mkdir -p "$cache"
scripts/setup.sh

build="$cache/llama-build"
if [ ! -x "$build/bin/llama-server" ]; then
  echo "serving-bench: building llama-server (once, about 8 minutes on 2 cores)" >&2
  cmake -S .native/llama.cpp -B "$build" -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" --target llama-server -j2 >/dev/null
fi

# Build output goes to stderr: stdout carries only the JSON lines.
for project in llm-server/KServe.Node.LlmServer benchmarks/KServe.Node.LoadBench; do
  dotnet build "$project" -c Release -nologo -v q -clp:ErrorsOnly >&2
done
ours_bin="$root/llm-server/KServe.Node.LlmServer/bin/Release/net10.0/llm-server"
bench_bin="$root/benchmarks/KServe.Node.LoadBench/bin/Release/net10.0/KServe.Node.LoadBench"

# The model: 8 layers, n_embd 512, n_ff 1536, F16, llama-spm vocabulary (~60M parameters), ChatML template.
model="$cache/bench-llama-60m-f16.gguf"
if [ ! -f "$model" ]; then
  "$bench_bin" gen-model --out "$model" --vocab .native/llama.cpp/models/ggml-vocab-llama-spm.gguf \
    --layers 8 --embd 512 --ff 1536 --heads 8 --type f16
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start_server LOG COMMAND...: runs a server in the background (stopped on exit), its output in $cache/LOG.
start_server() { local log=$1; shift; "$@" >"$cache/$log" 2>&1 & pids+=($!); }

wait_ready() {
  for _ in $(seq 1 240); do
    if curl -fs "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "serving-bench: $1 never became ready" >&2; return 1
}
