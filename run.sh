#!/usr/bin/env bash
# The main job: the node stack standalone on this machine (no Kubernetes).
#
#   ./run.sh                      cache and serve a generated demo model (RANDOM WEIGHTS: meaningless output)
#   ./run.sh URI [--allow GLOBS]  cache and serve a model from s3://, gs://, hf://owner/repo[:rev], http(s)://
#   options: --port N (llm-server, default 8080), --agent-port N (node-agent status, default 8090), --once
#
# It builds the solution, starts node-agent in standalone mode (caching into .run/cache from the
# LocalModelCache in .run/config), waits for the model, starts llm-server on the cached folder, prints the
# endpoint and a sample streaming curl, and stops both cleanly on Ctrl-C. --once sends one streamed
# chat request and exits (a smoke check). Set-up is included and idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
uri=""; allow=""; port=8080; agent_port=8090; once=0
while [ $# -gt 0 ]; do
  case "$1" in
    --allow) allow=$2; shift 2;;
    --port) port=$2; shift 2;;
    --agent-port) agent_port=$2; shift 2;;
    --once) once=1; shift;;
    -h|--help) sed -n 2,12p "$0"; exit 0;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2;;
    *) uri=$1; shift;;
  esac
done

scripts/setup.sh
echo "run.sh: building (Release)" >&2
dotnet build KServe.Node.sln -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
bin() { echo "$root/$1/bin/Release/net10.0/$2"; }
agent="$(bin node-agent node-agent)"
server="$(bin llm-server/KServe.Node.LlmServer llm-server)"
gen="$(bin benchmarks/KServe.Node.LoadBench KServe.Node.LoadBench)"

state="$root/.run"
mkdir -p "$state/config" "$state/cache" "$state/source"
rm -f "$state/config"/*.yaml
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "run.sh: stopped" >&2
}
trap stop EXIT
trap 'exit 130' INT TERM

served_name="model"
if [ -z "$uri" ]; then
  # Default: a generated model with a real vocabulary but RANDOM WEIGHTS, served from a local HTTP source,
  # so that the whole path (download, verify, cache, serve) runs with no network.
  demo="$state/source/random-weights-demo.gguf"
  if [ ! -f "$demo" ]; then
    echo "run.sh: generating the demo model (random weights, real llama vocabulary)" >&2
    "$gen" gen-model --preset demo --out "$demo" --vocab .native/llama.cpp/models/ggml-vocab-llama-spm.gguf --layers 4 --embd 256 --ff 768 --heads 4 >/dev/null
  fi
  src_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  python3 -m http.server "$src_port" --bind 127.0.0.1 --directory "$state/source" >/dev/null 2>&1 & pids+=($!)
  uri="http://127.0.0.1:$src_port/random-weights-demo.gguf"
  served_name="random-weights-demo"
  echo "run.sh: NOTE: the default model has random weights; its output is meaningless text." >&2
fi

cat > "$state/config/model.yaml" <<YAML
apiVersion: serving.kserve.io/v1alpha1
kind: LocalModelCache
metadata:
  name: $served_name
spec:
  sourceModelUri: "$uri"
  modelSize: 100Gi
  nodeGroups: [standalone]
$( [ -n "$allow" ] && printf '  storage:\n    parameters:\n      allowPatterns: "%s"\n' "$allow" )
YAML

echo "run.sh: starting node-agent (standalone, cache root $state/cache)" >&2
"$agent" standalone --config-dir "$state/config" --root "$state/cache" --http-port "$agent_port" >"$state/node-agent.log" 2>&1 & pids+=($!)

status() { curl -fs "http://127.0.0.1:$agent_port/status" 2>/dev/null || true; }
model_dir=""
last=""
for _ in $(seq 1 7200); do
  line=$(status | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit(0)
for m in d.get("models", []):
    total = m.get("bytesTotal") or 0
    pct = (100.0 * m.get("bytesDone", 0) / total) if total else 0.0
    print(m["state"], m.get("path", ""), "%.1f" % pct, (m.get("message") or "").replace("\n", " "))
    break
')
  state_now=${line%% *}
  if [ "$state_now" = "ModelDownloaded" ]; then model_dir=$(echo "$line" | cut -d' ' -f2); break; fi
  if [ "$state_now" = "ModelDownloadError" ]; then echo "run.sh: download failed: $line (see $state/node-agent.log)" >&2; exit 1; fi
  if [ -n "$line" ] && [ "$line" != "$last" ]; then echo "run.sh: $line%" >&2; last=$line; fi
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then echo "run.sh: node-agent exited; see $state/node-agent.log" >&2; tail -5 "$state/node-agent.log" >&2; exit 1; fi
  sleep 0.5
done
[ -n "$model_dir" ] || { echo "run.sh: the model did not finish downloading" >&2; exit 1; }
echo "run.sh: cached at $model_dir" >&2

echo "run.sh: starting llm-server on 127.0.0.1:$port" >&2
"$server" --model "$model_dir" --host 127.0.0.1 --port "$port" --served-model-name "$served_name" >"$state/llm-server.log" 2>&1 & pids+=($!)
for _ in $(seq 1 600); do
  curl -fs "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then echo "run.sh: llm-server exited; see $state/llm-server.log" >&2; tail -5 "$state/llm-server.log" >&2; exit 1; fi
  sleep 0.5
done

sample="curl -N http://127.0.0.1:$port/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"$served_name\",\"stream\":true,\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'"
cat <<MSG

KServe Node is serving "$served_name" (cached by node-agent from $uri)
  OpenAI endpoint:  http://127.0.0.1:$port/v1   (also /openai/v1)
  metrics:          http://127.0.0.1:$port/metrics
  cache status:     http://127.0.0.1:$agent_port/status   ($agent list --url http://127.0.0.1:$agent_port)
  logs:             $state/node-agent.log, $state/llm-server.log
Try:
  $sample

Press Ctrl-C to stop.
MSG
if [ "$once" = 1 ]; then
  eval "$sample" -sS --max-time 60
  echo
  exit 0
fi
wait "${pids[-1]}"
