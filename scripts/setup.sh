#!/usr/bin/env bash
# Installs what the build, tests, benchmarks and the demo need, idempotently:
#   - Debian packages (nodejs/npm, git) when missing;
#   - the pinned npm packages in tools/node (package-lock.json carries their integrity hashes):
#     the llama.cpp CPU libraries, s3rver, @huggingface/jinja;
#   - the llama.cpp CPU libraries copied into .native/cpu (git-ignored);
#   - the matching llama.cpp source (vocabularies, chat templates, llama-server for benchmarks) in
#     .native/llama.cpp, from the node-llama-cpp package's git bundle, integrity-checked.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
native="$root/.native"
LLAMA_NPM_VERSION=3.22.1
LLAMA_SRC_INTEGRITY='sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=='

log() { printf 'setup: %s\n' "$*" >&2; }

need_apt=()
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The chat template tests render with Debian's jinja2 as a stand-in for transformers.
/usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1 || need_apt+=(python3-jinja2)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "missing Debian packages (${need_apt[*]}) and no sudo: install them as root, then rerun"; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# npm packages, exactly as locked.
stamp="$root/tools/node/node_modules/.setup-stamp"
if [ ! -f "$stamp" ] || [ "$root/tools/node/package-lock.json" -nt "$stamp" ]; then
  log "installing pinned npm packages (tools/node)"
  (cd "$root/tools/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$stamp"
fi

# llama.cpp CPU libraries.
bins="$root/tools/node/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
if [ ! -f "$native/cpu/libllama.v0.5.0.so" ] || [ "$bins/libllama.v0.5.0.so" -nt "$native/cpu/libllama.v0.5.0.so" ]; then
  log "copying llama.cpp CPU libraries into .native/cpu"
  rm -rf "$native/cpu.tmp" && mkdir -p "$native/cpu.tmp"
  cp "$bins"/lib*.so "$native/cpu.tmp/"
  rm -rf "$native/cpu" && mv "$native/cpu.tmp" "$native/cpu"
fi

# llama.cpp source of the same version (for vocabularies, templates and the llama-server anchor).
if [ ! -f "$native/llama.cpp/include/llama.h" ]; then
  log "fetching llama.cpp source (node-llama-cpp@$LLAMA_NPM_VERSION git bundle)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack "node-llama-cpp@$LLAMA_NPM_VERSION" --loglevel=error >/dev/null)
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/node-llama-cpp-$LLAMA_NPM_VERSION.tgz" | base64 -w0)"
  if [ "$got" != "$LLAMA_SRC_INTEGRITY" ]; then
    log "integrity mismatch for node-llama-cpp-$LLAMA_NPM_VERSION.tgz: $got"; rm -rf "$tmp"; exit 1
  fi
  tar -xzf "$tmp/node-llama-cpp-$LLAMA_NPM_VERSION.tgz" -C "$tmp" package/llama/gitRelease.bundle
  rm -rf "$native/llama.cpp.tmp"
  git -c advice.detachedHead=false clone -q "$tmp/package/llama/gitRelease.bundle" "$native/llama.cpp.tmp"
  rm -rf "$native/llama.cpp" && mv "$native/llama.cpp.tmp" "$native/llama.cpp"
  rm -rf "$tmp"
fi
log "ready"
