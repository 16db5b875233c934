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
. benchmarks/serving/common.sh

port_a=18090; port_b=18091
anchor_cmd=("$build/bin/llama-server" -m "$model" --host 127.0.0.1 --port $port_a -c $ctx -np $parallel --kv-unified
  -t $threads -tb $threads --batch-size 2048 --ubatch-size 512 --no-webui --alias bench)
ours_cmd=("$ours_bin" --model "$model" --host 127.0.0.1 --port $port_b --ctx-size $ctx --parallel $parallel
  --threads $threads --threads-batch $threads --batch-size 2048 --ubatch-size 512 --served-model-name bench)
echo "{\"kind\":\"config\",\"anchor\":\"${anchor_cmd[*]}\",\"ours\":\"${ours_cmd[*]}\"}"
start_server llama-server-kv.log "${anchor_cmd[@]}"
start_server llm-server-kv.log "${ours_cmd[@]}"
wait_ready "http://127.0.0.1:$port_a/health"
wait_ready "http://127.0.0.1:$port_b/v2/health/ready"
python3 benchmarks/serving/kv_pressure.py --server "llama-server=http://127.0.0.1:$port_a" --server "ours=http://127.0.0.1:$port_b" \
  --requests "$requests" --max-tokens "$max_tokens" --rounds "$rounds"
