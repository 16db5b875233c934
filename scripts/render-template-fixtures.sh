#!/usr/bin/env bash
# Renders every chat template bundled with llama.cpp (.native/llama.cpp/models/templates) with
# `llama-server --jinja` built from that same source, and writes the prompts as test fixtures:
#   tests/KServe.Node.LlmServer.Tests/Templates/llama-server-prompts.json
# The chat template tests compare our prompts with these, so they need no llama-server build.
#
#   scripts/render-template-fixtures.sh
#
# llama-server is built once into ~/.cache/kserve-node/llama-build (about 8-10 minutes on 2 cores), as the
# serving benchmark does. Each template is served by its own llama-server on a small generated model
# (llama-spm vocabulary: bos <s>, eos </s>) through --chat-template-file, and asked /apply-template for each
# conversation in the cases below. A template llama-server refuses at start is recorded as refused.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${KSERVE_NODE_CACHE:-$HOME/.cache/kserve-node}"
mkdir -p "$cache"
scripts/setup.sh

build="$cache/llama-build"
if [ ! -x "$build/bin/llama-server" ]; then
  echo "template-fixtures: building llama-server (once)" >&2
  cmake -S .native/llama.cpp -B "$build" -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" --target llama-server -j2 >/dev/null
fi

dotnet build -c Release -nologo -v q -clp:ErrorsOnly benchmarks/KServe.Node.LoadBench >/dev/null
bench_bin="$root/benchmarks/KServe.Node.LoadBench/bin/Release/net10.0/KServe.Node.LoadBench"
model="$cache/template-fixtures-tiny.gguf"
if [ ! -f "$model" ]; then
  "$bench_bin" gen-model --out "$model" --vocab .native/llama.cpp/models/ggml-vocab-llama-spm.gguf \
    --layers 1 --embd 64 --ff 128 --heads 4 --type f32 >/dev/null
fi

out="tests/KServe.Node.LlmServer.Tests/Templates/llama-server-prompts.json"
commit="$(git -C .native/llama.cpp rev-parse HEAD 2>/dev/null || echo unknown)"
python3 - "$build/bin/llama-server" "$model" .native/llama.cpp/models/templates "$out" "$commit" "$cache" <<'PY'
import datetime, json, os, subprocess, sys, time, urllib.error, urllib.request

server, model, templates_dir, out, commit, cache = sys.argv[1:7]
port = 18190

# Fixed date variables: llama-server would otherwise put today's date into date-aware templates.
kwargs = {"enable_thinking": True, "date_string": "26 Jul 2024", "datetime": "Jul 26 2024"}
conversation = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello there!"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
weather = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                          "required": ["city"]}}}
cases = [
    {"name": "plain", "request": {"messages": conversation, "chat_template_kwargs": kwargs}},
    {"name": "tools", "request": {"messages": conversation, "tools": [weather], "chat_template_kwargs": kwargs}},
]

def call(path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())

results = {}
for name in sorted(f[:-6] for f in os.listdir(templates_dir) if f.endswith(".jinja")):
    log = open(os.path.join(cache, "template-fixtures-server.log"), "w")
    p = subprocess.Popen([server, "-m", model, "--jinja", "--chat-template-file", os.path.join(templates_dir, name + ".jinja"),
                          "--host", "127.0.0.1", "--port", str(port), "-c", "512", "-t", "1", "--no-webui"],
                         stdout=log, stderr=subprocess.STDOUT)
    entry = []
    try:
        ready = False
        for _ in range(600):
            if p.poll() is not None:
                break
            try:
                call("/health"); ready = True; break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        if not ready:
            log.flush()
            tail = open(log.name).read().strip().splitlines()[-1:] or ["exited"]
            entry = [{"ok": False, "error": "llama-server refused the template: " + tail[0][-300:]} for _ in cases]
        else:
            for c in cases:
                try:
                    entry.append({"ok": True, "prompt": call("/apply-template", c["request"])["prompt"]})
                except urllib.error.HTTPError as e:
                    entry.append({"ok": False, "error": e.read().decode(errors="replace")[:300]})
    finally:
        p.terminate(); p.wait()
        log.close()
    results[name] = entry
    print(f"{name}: " + " ".join("ok" if e["ok"] else "refused" for e in entry), file=sys.stderr)

doc = {
    "generated_by": "scripts/render-template-fixtures.sh",
    "llama_cpp_commit": commit,
    "rendered_on": datetime.date.today().isoformat(),
    "bos_token": "<s>", "eos_token": "</s>",
    "note": "llama-server drops a leading bos_token from the prompt when the vocabulary adds one itself (llama-spm does).",
    "cases": cases,
    "templates": results,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"wrote {out}: {len(results)} templates", file=sys.stderr)
PY
