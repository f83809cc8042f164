#!/usr/bin/env bash
# Runs `make dev` the way a user does (in the background here), waits until the host is
# ready, runs the seed's curl example and checks its result, then presses Ctrl-C (SIGINT to
# the whole process group) and checks that nothing is left running: no host, no dev server.
# Needs ports 8080, 7233 and 8088 free.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
log="$work/dev.log"
export ACTIVITY_HOST_DATA_DIR="$work/data"
api=http://127.0.0.1:8080

fail() {
    echo "dev-smoke: $*" >&2
    echo "--- make dev output ---" >&2
    tail -n 40 "$log" >&2 || true
    exit 1
}

setsid make dev >"$log" 2>&1 &
group=$!
trap 'kill -KILL -- -"$group" 2>/dev/null || true; rm -rf "$work"' EXIT

ready=""
for _ in $(seq 1 600); do
    if curl -fsS "$api/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$group" 2>/dev/null || fail "make dev exited before it was ready"
    sleep 0.5
done
[ -n "$ready" ] || fail "not ready after 300 s"
# What the wait was made of: a build (cargo's last lines), or only start-up.
echo "dev-smoke: ready after ${SECONDS} s; $(grep -aE '^ *(Compiling|Finished)' "$log" | tail -n 2 | tr -s ' ' | paste -sd ';' -)"

started=$(curl -fsS -X POST "$api/api/v1/workflows/user" \
    -H "Content-Type: application/json" \
    -d '{"user_id":"user-123","email":"test@example.com","name":"Test User","action":"create"}') \
    || fail "POST /api/v1/workflows/user failed"
read -r id run < <(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["workflow_id"], d["run_id"])' <<<"$started")
[ "$id" = "user-user-123-create" ] || fail "unexpected workflow id $id"

status=""
for _ in $(seq 1 100); do
    shown=$(curl -fsS "$api/api/v1/workflows/user/$id?run_id=$run")
    status=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' <<<"$shown")
    [ "$status" = "RUNNING" ] || break
    sleep 0.2
done
[ "$status" = "COMPLETED" ] || fail "workflow ended $status: $shown"
user=$(curl -fsS "$api/api/v1/users/user-123") || fail "GET /api/v1/users/user-123 failed"
python3 -c 'import json,sys; u=json.load(sys.stdin); assert u["email"]=="test@example.com", u' <<<"$user" \
    || fail "stored user: $user"
grep -q "Temporal UI" "$log" || fail "make dev did not print where the UI is"

# Ctrl-C.
kill -INT -- -"$group"
for _ in $(seq 1 120); do
    pgrep -g "$group" >/dev/null || break
    sleep 0.5
done
if pgrep -g "$group" >/dev/null; then
    fail "processes left after Ctrl-C: $(pgrep -a -g "$group")"
fi
if pgrep -f "$work/data" >/dev/null; then
    fail "dev server left after Ctrl-C: $(pgrep -a -f "$work/data")"
fi
if curl -fsS "$api/healthz" >/dev/null 2>&1; then
    fail "the API still answers after Ctrl-C"
fi
echo "dev-smoke: make dev served the seed's example and stopped cleanly"
