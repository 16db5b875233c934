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
# The disk-full tests mount a small tmpfs. As root that just works; otherwise the tests run in an
# unprivileged user and mount namespace, where the user may mount tmpfs (nothing outside is touched).
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if unshare --user --map-root-user --mount true 2>/dev/null; then
    as_root=(unshare --user --map-root-user --mount)
  else
    echo "test.sh: not root and user namespaces are unavailable: the disk-full tests will fail (run as root)" >&2
  fi
fi
set +e
"${as_root[@]}" dotnet test KServe.Node.sln -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results" "$@"
test_rc=$?
set -e
python3 scripts/test-summary.py "$results" || exit 1
exit $test_rc
