#!/usr/bin/env bash
# Runs every test of the solution (set-up included, idempotent) and prints one closing line
# "N passed, N failed[, N skipped]" computed from the TRX results. Exits non-zero on a build error, a
# failed test, or a test skipped for any reason other than a missing GPU.
# Extra arguments go to `dotnet test` (e.g. --filter 'FullyQualifiedName~Gguf').
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
scripts/setup.sh
results="$root/.artifacts/test-results"
rm -rf "$results" && mkdir -p "$results"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
echo "test.sh: building" >&2
dotnet build KServe.Node.sln -c Release -warnaserror -nologo -v q -clp:ErrorsOnly
echo "test.sh: testing" >&2
set +e
dotnet test KServe.Node.sln -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results" "$@"
test_rc=$?
set -e
python3 scripts/test-summary.py "$results" || exit 1
exit $test_rc
