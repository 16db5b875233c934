#!/usr/bin/env bash
# Cache-controller scale benchmark: N nodes in 5 node groups and 100 LocalModelCaches on the test API server,
# the cache-controller running as its own process. Prints one JSON line per run (see
# benchmarks/KServe.Node.ScaleBench/Program.cs for the fields).
#
# Usage: benchmarks/scale/run.sh [NODE_COUNTS...]     (default: 100 1000; RUNS=3 repetitions of the set)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS="${RUNS:-3}"
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(100 1000)
printf 'bench: building (Release)\n' >&2
dotnet build "$root/benchmarks/KServe.Node.ScaleBench" -c Release -nologo -v q -clp:ErrorsOnly >&2
for _ in $(seq "$RUNS"); do
  dotnet "$root/benchmarks/KServe.Node.ScaleBench/bin/Release/net10.0/KServe.Node.ScaleBench.dll" "${sizes[@]}"
done
