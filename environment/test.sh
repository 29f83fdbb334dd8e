#!/usr/bin/env bash
# The project's test command (README; .ci/run runs exactly this).
# Installs what tests need where missing, builds, runs every test, and ends with "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash environment/install-test-packages.sh || echo "warning: test packages could not be installed; the tests that need them will report as skipped"

# TorchSharp 0.107 frees a number operand's native Scalar in a finalizer, and a collection triggered by another thread
# during the native call that reads it makes that call fail ("Expected false to be true ... toDouble", "Unknown scalar
# type"; lib/RoentGen/Training/ScalarSafe.cs). Tests run many classes in parallel threads, so collections are frequent;
# a 64 MiB first-generation budget (the default is a few MiB) makes them about 30 times rarer. The user's own setting
# wins. The library's hot paths hold their scalars; this narrows what remains.
export DOTNET_GCgen0size="${DOTNET_GCgen0size:-0x4000000}"

results="$root/data/generated/test-results"
rm -rf "$results"
dotnet build RoentGen.Notebooks.sln -c Release -nologo -v q || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
dotnet test RoentGen.Notebooks.sln -c Release --no-build -nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$results" "$@" 2>&1 | tee "$results.log"
code=${PIPESTATUS[0]}

# What dotnet test said about an aborted run (a crashed test host records no failed test).
abort_lines() { grep -i -A12 "aborted\|crash" "$results.log" | head -n 40 | sed 's/^/  /'; }

trx="$results/results.trx"
if [ -f "$trx" ]; then
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { echo "$counters" | grep -o "$1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  passed=$(get passed); failed=$(get failed); total=$(get total); executed=$(get executed)
  skipped=$(( ${total:-0} - ${executed:-0} ))
  [ "${total:-0}" -gt 0 ] || { echo "no test was executed"; code=1; }
  # The failures again, just above the last line, so a log that keeps only its tail still names them.
  if [ "${failed:-0}" -gt 0 ]; then
    echo "failed tests:"
    if command -v python3 >/dev/null; then
      python3 - "$trx" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") != "Failed":
        continue
    print("  " + r.get("testName", "?"))
    for tag in ("Message", "StackTrace"):
        e = r.find(".//t:ErrorInfo/t:" + tag, ns)
        lines = (e.text or "").strip().splitlines() if e is not None else []
        for line in lines[:12]:
            print("    " + line)
PY
    else
      grep -o '<UnitTestResult [^>]*outcome="Failed"' "$trx" | grep -o 'testName="[^"]*"' | sed 's/^/  /'
    fi
  fi
  if [ $code -ne 0 ] && [ "${failed:-0}" -eq 0 ]; then
    echo "the test command failed (exit $code) without a failed test; what it said about it:"
    abort_lines
  fi
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped} skipped"
else
  echo "no test results were written"
  abort_lines
  echo "0 passed, 1 failed"
  [ $code -ne 0 ] || code=1
fi
exit $code
