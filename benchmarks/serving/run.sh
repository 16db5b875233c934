#!/usr/bin/env bash
# Serving benchmark: our llm-server against llama-server built from the same llama.cpp source, on the
# same generated ~60M-parameter model with the same settings, driven by the same closed-loop streaming
# load (benchmarks/KServe.Node.LoadBench, then the Python closed_loop.py), the two servers alternating round by round.
# Prints both command lines and one JSON line per round plus one summary line (with ratios) per workload.
# Then the same again with our server on the anchor's own ggml build (the libraries of the llama-server build,
# OpenMP threading) instead of the bundled node-llama-cpp libraries (ggml's own spinning threadpool), so the
# difference the two ggml builds make is measured apart from what the servers do.
#
#   benchmarks/serving/run.sh [--parallel 32] [--rounds 3] [--requests-per-round 32] [--max-tokens 64]
#
# llama-server is built once into ~/.cache/kserve-node/llama-build (benchmarks/serving/common.sh).
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
. benchmarks/serving/common.sh

port_a=18080; port_b=18081; port_c=18082

anchor_cmd=("$build/bin/llama-server" -m "$model" --host 127.0.0.1 --port $port_a --ctx-size $ctx --parallel $parallel
  --kv-unified --threads $threads --threads-batch $threads --batch-size 2048 --ubatch-size 512 --no-webui)
ours_args=(--model "$model" --host 127.0.0.1 --ctx-size $ctx --parallel $parallel
  --threads $threads --threads-batch $threads --batch-size 2048 --ubatch-size 512 --served-model-name bench)
ours_cmd=("$ours_bin" "${ours_args[@]}" --port $port_b)
ours_same_ggml_cmd=(env "KSERVE_NODE_NATIVE_DIR=$build/bin" "$ours_bin" "${ours_args[@]}" --port $port_c)
echo "{\"kind\":\"config\",\"anchor\":\"${anchor_cmd[*]}\",\"ours\":\"${ours_cmd[*]}\",\"ours_same_ggml\":\"${ours_same_ggml_cmd[*]}\"}"
start_server llm-server.log "${ours_cmd[@]}"
start_server llm-server-same-ggml.log "${ours_same_ggml_cmd[@]}"
wait_ready "http://127.0.0.1:$port_b/v2/health/ready"
wait_ready "http://127.0.0.1:$port_c/v2/health/ready"

# compare LABEL PORT: both clients, ours on PORT against a freshly started anchor (both clients use the same prompts in
# every comparison, and the anchor's idle slots keep the prompts they served). The servers not under load sit idle.
compare() {
  echo "{\"kind\":\"section\",\"ours\":\"$1\"}"
  start_server "llama-server-$1.log" "${anchor_cmd[@]}"
  local anchor_pid=$!
  wait_ready "http://127.0.0.1:$port_a/health"
  "$bench_bin" compare --ours "http://127.0.0.1:$2/" --anchor "http://127.0.0.1:$port_a/" --model bench \
    --concurrency 1,8,32 --shared-prefix-words 400 --shared-prefix-concurrency 8 \
    --rounds "$rounds" --requests-per-round "$per_round" --max-tokens "$max_tokens"
  # The same workloads from a Python client (benchmarks/serving/closed_loop.py), so the figures do not rest on
  # our own .NET client alone.
  python3 benchmarks/serving/closed_loop.py --ours "http://127.0.0.1:$2/" --anchor "http://127.0.0.1:$port_a/" --model bench \
    --concurrency 1,8,32 --rounds "$rounds" --requests-per-round "$per_round" --max-tokens "$max_tokens"
  kill "$anchor_pid"; wait "$anchor_pid" 2>/dev/null || true
}
compare bundled-ggml $port_b
compare anchor-ggml $port_c
