#!/usr/bin/env bash
# Runs a command (the test suite) RUNS times in a row while stress-ng keeps every core busy,
# and says how many runs passed. Usage: under-load.sh RUNS COMMAND...
set -uo pipefail
runs=$1
shift
stress-ng --cpu "$(nproc)" --timeout 0 --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null' EXIT
passed=0
for run in $(seq 1 "$runs"); do
    echo "==> under load: run $run of $runs"
    started=$(date +%s)
    if "$@"; then
        passed=$((passed + 1))
        echo "==> run $run passed in $(($(date +%s) - started)) s"
    else
        echo "==> run $run FAILED after $(($(date +%s) - started)) s"
    fi
done
echo "under load: $passed of $runs runs passed"
[ "$passed" -eq "$runs" ]
