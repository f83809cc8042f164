#!/usr/bin/env bash
# Runs every test step of `make test`, goes on past a failing one, and ends with one summary:
# each step's outcome and time, every failed test by name, and the totals as the last line
# ("N passed, M failed"). Exits non-zero when anything failed.
#
# Steps are given as NAME=COMMAND arguments, run in order with `bash -c`; their output is
# shown as it comes and kept for the summary. cargo's own test summaries
# ("test result: ... N passed; M failed") are added up across every test binary of a step.
set -uo pipefail

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
steps=()
outcomes=()

for spec in "$@"; do
    name=${spec%%=*}
    command=${spec#*=}
    echo "==> $name: $command"
    started=$(date +%s)
    bash -c "$command" 2>&1 | tee "$logs/$name.log"
    code=${PIPESTATUS[0]}
    took=$(($(date +%s) - started))
    steps+=("$name")
    if [ "$code" -eq 0 ]; then
        outcomes+=("ok ${took}s")
    else
        outcomes+=("FAILED (exit $code) ${took}s")
    fi
done

passed=0
failed=0
echo
echo "==> summary"
for i in "${!steps[@]}"; do
    name=${steps[$i]}
    log="$logs/$name.log"
    # cargo test: "test result: ok. 12 passed; 0 failed; ..." once per test binary.
    read -r p f < <(grep -aE '^test result: ' "$log" |
        sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' |
        awk '{p += $1; f += $2} END {print p + 0, f + 0}')
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        # A step that is not cargo test (a script): one check of its own.
        case ${outcomes[$i]} in
            ok*) p=1 ;;
            *) f=1 ;;
        esac
    elif [ "$f" -eq 0 ] && [[ ${outcomes[$i]} != ok* ]]; then
        # cargo failed outside a test (a build error, a crashed test binary).
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '  %-12s %-24s %s passed, %s failed\n' "$name" "${outcomes[$i]}" "$p" "$f"
    grep -aE '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/      failed: \1/' | sort -u
    # cargo --no-fail-fast names the test binaries that failed: "    `-p crate --test name`".
    grep -aE '^    `-p .*`$' "$log" | sed -E 's/^    /      binary: /'
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
