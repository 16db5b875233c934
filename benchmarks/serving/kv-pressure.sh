#!/usr/bin/env bash
# KV-pressure benchmark: a burst of concurrent streaming completions that together need several times the KV
# cache (each fits alone), against our llm-server and llama-server built from the same llama.cpp source, same
# context and slots, same generated model as run.sh. The driver is Python (benchmarks/serving/kv_pressure.py).
#
#   benchmarks/serving/kv-pressure.sh [--ctx 2048] [--parallel 8] [--requests 16] [--max-tokens 300] [--rounds 2]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
ctx=2048; parallel=8; requests=16; max_tokens=300; rounds=2; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --ctx) ctx=$2; shift 2;;
    --parallel) parallel=$2; shift 2;;
    --requests) requests=$2; shift 2;;
    --max-tokens) max_tokens=$2; shift 2;;
    --rounds) rounds=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
cache="${KSERVE_NODE_CACHE:-$HOME/.cache/kserve-node}"
mkdir -p "$cache"
scripts/setup.sh
build="$cache/llama-build"
if [ ! -x "$build/bin/llama-server" ]; then
  echo "kv-pressure: building llama-server (once)" >&2
  cmake -S .native/llama.cpp -B "$build" -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" --target llama-server -j2 >/dev/null
fi
for project in llm-server/KServe.Node.LlmServer benchmarks/KServe.Node.LoadBench; do
  dotnet build "$project" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
done
ours_bin="$root/llm-server/KServe.Node.LlmServer/bin/Release/net10.0/llm-server"
model="$cache/bench-llama-60m-f16.gguf"
if [ ! -f "$model" ]; then
  "$root/benchmarks/KServe.Node.LoadBench/bin/Release/net10.0/KServe.Node.LoadBench" gen-model --out "$model" \
    --vocab .native/llama.cpp/models/ggml-vocab-llama-spm.gguf --layers 8 --embd 512 --ff 1536 --heads 8 --type f16
fi

port_a=18090; port_b=18091
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
anchor_cmd=("$build/bin/llama-server" -m "$model" --host 127.0.0.1 --port $port_a -c $ctx -np $parallel --kv-unified
  -t $threads -tb $threads --batch-size 2048 --ubatch-size 512 --no-webui --alias bench)
ours_cmd=("$ours_bin" --model "$model" --host 127.0.0.1 --port $port_b --ctx-size $ctx --parallel $parallel
  --threads $threads --threads-batch $threads --batch-size 2048 --ubatch-size 512 --served-model-name bench)
echo "{\"kind\":\"config\",\"anchor\":\"${anchor_cmd[*]}\",\"ours\":\"${ours_cmd[*]}\"}"
"${anchor_cmd[@]}" >"$cache/llama-server-kv.log" 2>&1 & pids+=($!)
"${ours_cmd[@]}" >"$cache/llm-server-kv.log" 2>&1 & pids+=($!)
wait_ready() {
  for _ in $(seq 1 240); do
    if curl -fs "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "kv-pressure: $1 never became ready" >&2; return 1
}
wait_ready "http://127.0.0.1:$port_a/health"
wait_ready "http://127.0.0.1:$port_b/v2/health/ready"
python3 benchmarks/serving/kv_pressure.py --server "llama-server=http://127.0.0.1:$port_a" --server "ours=http://127.0.0.1:$port_b" \
  --requests "$requests" --max-tokens "$max_tokens" --rounds "$rounds"
