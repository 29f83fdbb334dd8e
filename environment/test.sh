#!/usr/bin/env bash
# The project's test command (README; .ci/run runs exactly this).
# Installs what tests need where missing, builds, runs every test, and ends with "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash environment/install-test-packages.sh || echo "warning: test packages could not be installed; the tests that need them will report as skipped"

results="$root/data/generated/test-results"
rm -rf "$results"
dotnet build RoentGen.Notebooks.sln -c Release -nologo -v q || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
dotnet test RoentGen.Notebooks.sln -c Release --no-build -nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$results" "$@"
code=$?

trx="$results/results.trx"
if [ -f "$trx" ]; then
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { echo "$counters" | grep -o "$1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  passed=$(get passed); failed=$(get failed); total=$(get total); executed=$(get executed)
  skipped=$(( ${total:-0} - ${executed:-0} ))
  [ "${total:-0}" -gt 0 ] || { echo "no test was executed"; code=1; }
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped} skipped"
else
  echo "no test results were written"
  echo "0 passed, 1 failed"
  [ $code -ne 0 ] || code=1
fi
exit $code
