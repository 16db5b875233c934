#!/usr/bin/env bash
# Download benchmark: node-agent (`download URI DEST`, verification on) against curl (one stream, output
# fsynced) fetching the same object from loopback servers: Debian's nginx (static files) and s3rver
# (S3 protocol). Runs alternate in the same process so both see the same machine state. Also measures
# the raw disk-write ceiling (dd of the same size, fsynced) on the same file system.
# Prints one JSON line per run, then a summary line with the ratios (curl seconds / agent seconds:
# above 1 means the agent is faster).
#
# Usage: benchmarks/download/run.sh            (SIZE_MIB=1024 RUNS=3 BENCH_DIR=/tmp by default;
#        AGENT_ARGS="--streams 2" passes options to `node-agent download`)
# Needs: nginx (apt-get install nginx), node + s3rver (scripts/setup.sh), curl, bc, the .NET SDK.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SIZE_MIB="${SIZE_MIB:-1024}"
RUNS="${RUNS:-3}"
work="$(mktemp -d "${BENCH_DIR:-/tmp}/kserve-download-bench.XXXXXX")"
nginx_pid="" s3_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  [ -n "$s3_pid" ] && kill "$s3_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf 'bench: %s\n' "$*" >&2; }
now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v nginx >/dev/null || { log "nginx missing: apt-get install nginx"; exit 1; }
command -v curl >/dev/null || { log "curl missing"; exit 1; }
s3rver="$root/tools/node/node_modules/s3rver/bin/s3rver.js"
[ -f "$s3rver" ] || { log "s3rver missing: run scripts/setup.sh"; exit 1; }

log "building node-agent (Release)"
dotnet build "$root/node-agent" -c Release -o "$work/agent" -nologo -v q -clp:ErrorsOnly >&2
agent=(dotnet "$work/agent/node-agent.dll")

log "writing a ${SIZE_MIB} MiB object"
mkdir -p "$work/www" "$work/s3" "$work/nginx"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/www/model.bin"
# nginx workers run as an unprivileged user: the tree they serve must be readable (mktemp -d is 0700).
chmod 755 "$work" "$work/www"; chmod 644 "$work/www/model.bin"
bytes=$(stat -c %s "$work/www/model.bin")

nginx_port=$(free_port)
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; root $work/www; autoindex on; }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!

node "$s3rver" -d "$work/s3" -a 127.0.0.1 -p 0 --silent > "$work/s3.log" 2>&1 &
s3_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/s3.log" 2>/dev/null && break; sleep 0.1; done
s3_port=$(sed -n 's/.*listening on [^:]*:\([0-9]*\).*/\1/p' "$work/s3.log")
[ -n "$s3_port" ] || { log "s3rver did not start: $(cat "$work/s3.log")"; exit 1; }
curl -sf -X PUT "http://127.0.0.1:$s3_port/bench" >/dev/null
curl -sf -X PUT -T "$work/www/model.bin" "http://127.0.0.1:$s3_port/bench/model.bin" >/dev/null
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/model.bin" -r 0-0 && break; sleep 0.1; done
curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$nginx_port/model.bin" || { log "nginx does not serve the object: $(cat "$work/nginx/error.log")"; exit 1; }

log "disk ceiling: dd ${SIZE_MIB} MiB, fsynced"
t0=$(now); dd if=/dev/zero of="$work/ceiling.bin" bs=16M count="$((SIZE_MIB / 16))" conv=fsync status=none; t1=$(now)
rm -f "$work/ceiling.bin"
ceiling_s=$(echo "$t1 - $t0" | bc -l)

declare -A sum_curl sum_agent
run_curl() { # url
  local t0 t1; t0=$(now)
  curl -sf -o "$work/curl.bin" "$1" || { log "curl failed on $1"; return 1; }
  sync "$work/curl.bin"
  t1=$(now)
  [ "$(stat -c %s "$work/curl.bin")" = "$bytes" ] || { log "curl: wrong size"; exit 1; }
  rm -f "$work/curl.bin"
  echo "$t1 - $t0" | bc -l
}
run_agent() { # uri
  local t0 t1; t0=$(now)
  AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 \
    "${agent[@]}" download "$1" "$work/agent-out" ${AGENT_ARGS:-} >/dev/null || { log "node-agent failed on $1"; return 1; }
  t1=$(now)
  [ "$(stat -c %s "$work/agent-out/model.bin")" = "$bytes" ] || { log "agent: wrong size"; exit 1; }
  rm -rf "$work/agent-out"
  echo "$t1 - $t0" | bc -l
}

for run in $(seq "$RUNS"); do
  for source in nginx s3rver; do
    if [ "$source" = nginx ]; then url="http://127.0.0.1:$nginx_port/model.bin"; uri="$url"; verify="size (nginx offers no digest)"
    else url="http://127.0.0.1:$s3_port/bench/model.bin"; uri="s3://bench/model.bin"; verify="size+md5 (ETag)"; fi
    # Alternate which goes first, so neither always meets a warmer cache.
    if [ $((run % 2)) -eq 1 ]; then c=$(run_curl "$url"); a=$(run_agent "$uri"); else a=$(run_agent "$uri"); c=$(run_curl "$url"); fi
    [ -n "$c" ] && [ -n "$a" ] || exit 1
    sum_curl[$source]=$(echo "${sum_curl[$source]:-0} + $c" | bc -l)
    sum_agent[$source]=$(echo "${sum_agent[$source]:-0} + $a" | bc -l)
    printf '{"run":%d,"source":"%s","bytes":%d,"curl_s":%.3f,"agent_s":%.3f,"curl_over_agent":%.3f,"agent_verification":"%s"}\n' \
      "$run" "$source" "$bytes" "$c" "$a" "$(echo "$c / $a" | bc -l)" "$verify"
  done
done

mibs() { echo "$SIZE_MIB / $1" | bc -l; }
printf '{"summary":true,"size_mib":%d,"runs":%d,"disk_ceiling_mib_s":%.0f' "$SIZE_MIB" "$RUNS" "$(mibs "$ceiling_s")"
for source in nginx s3rver; do
  c=$(echo "${sum_curl[$source]} / $RUNS" | bc -l); a=$(echo "${sum_agent[$source]} / $RUNS" | bc -l)
  printf ',"%s":{"curl_mib_s":%.0f,"agent_mib_s":%.0f,"curl_over_agent":%.2f,"agent_of_ceiling":%.2f}' \
    "$source" "$(mibs "$c")" "$(mibs "$a")" "$(echo "$c / $a" | bc -l)" "$(echo "$ceiling_s / $a" | bc -l)"
done
printf '}\n'
