#!/usr/bin/env bash
# On a CUDA machine (nvcc 13, cmake, ninja): builds llama.cpp's CUDA backend for sm_90 from the pinned source and
# runs the engine benchmark on the CPU and CUDA backends.
#   SRC=path/to/llama.cpp  BENCH=path/to/published/KServe.Node.EngineBench  VOCAB=ggml-vocab-llama-spm.gguf  OUT=dir
set -uo pipefail
SRC=${SRC:?llama.cpp source}; BENCH=${BENCH:?published benchmark}; VOCAB=${VOCAB:?vocabulary gguf}
OUT=${OUT:-$PWD/out}; B=${BUILD:-$PWD/.cuda-build}; mkdir -p "$B" "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
if [ ! -f "$B/done" ]; then
  cmake -S "$SRC" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
    -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=ON -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGGML_CUDA_NCCL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  cmake --build "$B" -j"$(nproc)" > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
  touch "$B/done"
fi
mkdir -p "$B/cpu" "$B/cuda"
for f in $(find "$B" -name 'libllama.so*' -o -name 'libggml.so*' -o -name 'libggml-base.so*' -o -name 'libggml-cpu*.so*'); do
  cp -a "$f" "$B/cpu/"; cp -a "$f" "$B/cuda/"
done
find "$B" -name 'libggml-cuda.so*' -exec cp -a {} "$B/cuda/" \;
MODEL=${MODEL:-/tmp/bench-60m-f16.gguf}
for cfg in "cpu 0 $B/cpu" "cuda -1 $B/cuda"; do
  set -- $cfg
  "$BENCH" --model "$MODEL" --vocab "$VOCAB" --native "$3" --backend "$1" --gpu-layers "$2" --threads "${THREADS:-8}" \
    --ctx 8192 --streams "${STREAMS:-1,8,32}" --tokens "${TOKENS:-128}" --prompt 32 | tee -a "$OUT/bench.jsonl"
done
