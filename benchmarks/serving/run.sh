#!/usr/bin/env bash
# Serving benchmark: our llm-server against llama-server built from the same llama.cpp source, on the
# same generated ~60M-parameter model with the same settings, driven by the same closed-loop streaming
# load (benchmarks/KServe.Node.LoadBench, then the Python closed_loop.py), the two servers alternating round by round.
# Prints both command lines and one JSON line per round plus one summary line (with ratios) per workload.
#
#   benchmarks/serving/run.sh [--parallel 32] [--rounds 3] [--requests-per-round 32] [--max-tokens 64]
#
# llama-server is built once into ~/.cache/kserve-node/llama-build (about 8 minutes on 2 cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
parallel=32; rounds=3; per_round=32; max_tokens=64; threads=2; ctx=8192
while [ $# -gt 0 ]; do
  case "$1" in
    --parallel) parallel=$2; shift 2;;
    --rounds) rounds=$2; shift 2;;
    --requests-per-round) per_round=$2; shift 2;;
    --max-tokens) max_tokens=$2; shift 2;;
    --threads) threads=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
cache="${KSERVE_NODE_CACHE:-$HOME/.cache/kserve-node}"
mkdir -p "$cache"
scripts/setup.sh

# 1. llama-server from the bundled source (same commit as the libraries we load).
build="$cache/llama-build"
if [ ! -x "$build/bin/llama-server" ]; then
  echo "serving-bench: building llama-server (once)" >&2
  cmake -S .native/llama.cpp -B "$build" -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" --target llama-server -j2 >/dev/null
fi

# 2. Our server and the load driver.
dotnet build -c Release -nologo -v q -clp:ErrorsOnly llm-server/KServe.Node.LlmServer benchmarks/KServe.Node.LoadBench >/dev/null 2>&1 \
  || dotnet build -c Release -nologo -v q -clp:ErrorsOnly llm-server/KServe.Node.LlmServer
dotnet build -c Release -nologo -v q -clp:ErrorsOnly benchmarks/KServe.Node.LoadBench >/dev/null
ours_bin="$root/llm-server/KServe.Node.LlmServer/bin/Release/net10.0/llm-server"
bench_bin="$root/benchmarks/KServe.Node.LoadBench/bin/Release/net10.0/KServe.Node.LoadBench"

# 3. The model: 8 layers, n_embd 512, n_ff 1536, F16, llama-spm vocabulary (~60M parameters), ChatML template.
model="$cache/bench-llama-60m-f16.gguf"
if [ ! -f "$model" ]; then
  "$bench_bin" gen-model --out "$model" --vocab .native/llama.cpp/models/ggml-vocab-llama-spm.gguf \
    --layers 8 --embd 512 --ff 1536 --heads 8 --type f16
fi

port_a=18080; port_b=18081
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

anchor_cmd=("$build/bin/llama-server" -m "$model" --host 127.0.0.1 --port $port_a --ctx-size $ctx --parallel $parallel
  --kv-unified --threads $threads --threads-batch $threads --batch-size 2048 --ubatch-size 512 --no-webui)
ours_cmd=("$ours_bin" --model "$model" --host 127.0.0.1 --port $port_b --ctx-size $ctx --parallel $parallel
  --threads $threads --threads-batch $threads --batch-size 2048 --ubatch-size 512 --served-model-name bench)
echo "{\"kind\":\"config\",\"anchor\":\"${anchor_cmd[*]}\",\"ours\":\"${ours_cmd[*]}\"}"
"${anchor_cmd[@]}" >"$cache/llama-server.log" 2>&1 & pids+=($!)
"${ours_cmd[@]}" >"$cache/llm-server.log" 2>&1 & pids+=($!)

wait_ready() {
  for _ in $(seq 1 240); do
    if curl -fs "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "serving-bench: $1 never became ready" >&2; return 1
}
wait_ready "http://127.0.0.1:$port_a/health"
wait_ready "http://127.0.0.1:$port_b/v2/health/ready"

"$bench_bin" compare --ours "http://127.0.0.1:$port_b/" --anchor "http://127.0.0.1:$port_a/" --model bench \
  --concurrency 1,8,32 --shared-prefix-words 400 --shared-prefix-concurrency 8 \
  --rounds "$rounds" --requests-per-round "$per_round" --max-tokens "$max_tokens"

# 4. The same workloads from a Python client (benchmarks/serving/closed_loop.py), so the figures do not rest on
#    our own .NET client alone.
python3 benchmarks/serving/closed_loop.py --ours "http://127.0.0.1:$port_b/" --anchor "http://127.0.0.1:$port_a/" --model bench \
  --concurrency 1,8,32 --rounds "$rounds" --requests-per-round "$per_round" --max-tokens "$max_tokens"
