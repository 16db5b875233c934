#!/usr/bin/env bash
# Serving benchmark on a CUDA machine (nvcc 13, cmake, ninja; no .NET SDK needed): builds llama.cpp's CUDA
# backend and llama-server (sm_90 by default) from the pinned source, then runs the same comparison as
# benchmarks/serving/run.sh with every layer and the KV cache on the GPU for both servers.
#   SRC=llama.cpp source  DOTNET_ROOT=.NET runtime folder (dotnet + shared/)  OURS=llm-server publish folder
#   BENCH=LoadBench publish folder  OUT=results folder  [ARCH=90 ROUNDS=3 PER_ROUND=64 MAX_TOKENS=128 PARALLEL=64]
set -euo pipefail
SRC=${SRC:?llama.cpp source}; OURS=${OURS:?llm-server publish}; BENCH=${BENCH:?LoadBench publish}
: "${DOTNET_ROOT:?.NET runtime folder}"; export DOTNET_ROOT PATH="$DOTNET_ROOT:$PATH"
OUT=${OUT:-$PWD/out}; B=${BUILD:-$PWD/.cuda-build}; mkdir -p "$B" "$OUT"
ARCH=${ARCH:-90}; ROUNDS=${ROUNDS:-3}; PER_ROUND=${PER_ROUND:-64}; MAX_TOKENS=${MAX_TOKENS:-128}; PARALLEL=${PARALLEL:-64}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
log() { printf 'cuda-serving-bench: %s\n' "$*" >&2; }

if [ ! -f "$B/done" ]; then
  log "building llama.cpp (CUDA sm_$ARCH) and llama-server"
  cmake -S "$SRC" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=ON -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
    -DGGML_CUDA_NCCL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  # Only what the two servers load: llama-server (with libllama, libggml), the CUDA backend and the CPU variants.
  cpu_targets=$(ninja -C "$B" -t targets all | grep -oE '^ggml-cpu-[a-z0-9_]+: phony' | cut -d: -f1)
  # shellcheck disable=SC2086
  cmake --build "$B" -j"$(nproc)" --target llama-server ggml-cuda $cpu_targets > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
  touch "$B/done"
fi
# Both servers load the same libraries: the ones just built (llama-server finds them beside itself).
native="$B/bin"
ls "$native"/libggml-cuda.so "$native"/libllama.so* >/dev/null

model=${MODEL:-/tmp/bench-llama-60m-f16.gguf}
[ -f "$model" ] || "$BENCH/KServe.Node.LoadBench" gen-model --out "$model" --vocab "$SRC/models/ggml-vocab-llama-spm.gguf" \
  --layers 8 --embd 512 --ff 1536 --heads 8 --type f16 >&2

ctx=$((PARALLEL * (MAX_TOKENS + 640)))
anchor=("$native/llama-server" -m "$model" --host 127.0.0.1 --port 18080 --ctx-size $ctx --parallel "$PARALLEL" --kv-unified
  --n-gpu-layers 99 --threads 8 --batch-size 2048 --ubatch-size 512 --no-webui)
ours=("$OURS/llm-server" --model "$model" --host 127.0.0.1 --port 18081 --ctx-size $ctx --parallel "$PARALLEL"
  --backend cuda --gpu-layers -1 --native-dir "$native" --threads 8 --batch-size 2048 --ubatch-size 512 --served-model-name bench)
echo "{\"kind\":\"config\",\"anchor\":\"${anchor[*]}\",\"ours\":\"${ours[*]}\"}" | tee "$OUT/results.jsonl"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
"${anchor[@]}" > "$OUT/llama-server.log" 2>&1 & pids+=($!)
"${ours[@]}" > "$OUT/llm-server.log" 2>&1 & pids+=($!)
for url in http://127.0.0.1:18080/health http://127.0.0.1:18081/v2/health/ready; do
  for _ in $(seq 1 240); do curl -fs "$url" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fs "$url" >/dev/null || { log "$url never became ready"; tail -20 "$OUT"/*.log; exit 1; }
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader >&2 || true
"$BENCH/KServe.Node.LoadBench" compare --ours http://127.0.0.1:18081/ --anchor http://127.0.0.1:18080/ --model bench \
  --concurrency "1,8,32,$PARALLEL" --shared-prefix-words 400 --shared-prefix-concurrency 8 \
  --rounds "$ROUNDS" --requests-per-round "$PER_ROUND" --max-tokens "$MAX_TOKENS" | tee -a "$OUT/results.jsonl"
