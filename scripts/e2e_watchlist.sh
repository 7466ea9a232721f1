#!/usr/bin/env bash
# The seed's local end-to-end run, with the real `roost` command in separate processes:
#
#   local HTTP target -> `roost worker --engines watchlist` in the background
#   -> `WORK_ID=$(uv run roost enqueue --engine watchlist ...)` (3 checks, 1 s apart)
#   -> SIGKILL the worker once at least one check is committed -> start a new worker
#   -> wait for `done` -> check the final status -> `roost artifact-show <id> --ext json`
#
# It checks that the work resumed instead of starting over: state done, checks_completed
# equal to checks_required, one observation per check (no duplicates, distinct times), the
# observations committed before the kill unchanged, snapshot version checks_required + 1.
# Any mismatch exits non-zero. Every process it starts is stopped on exit.
#
# Redis: its own embedded server under a temporary ROOST_HOME (stopped at the end), unless
# ROOST_REDIS_URL is set, in which case that server is used with a namespace of its own.
# A short ROOST_LEASE_TTL (3s) lets a step interrupted by the kill be recovered quickly.
set -euo pipefail

cd "$(dirname "$0")/.."
CHECKS=3
DELAY=1
TIMEOUT=${E2E_TIMEOUT:-90}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/roost-e2e.XXXXXX")
export ROOST_HOME="$TMP/home"
export ROOST_NAMESPACE="e2e-$$-$RANDOM"
export ROOST_LEASE_TTL=3s
export ROOST_GRACE_PERIOD=5s
export PYTHONUNBUFFERED=1

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "FAILED: $*"; exit 1; }

# The background processes run the venv's executables directly, so that $! is the process we
# signal (a SIGKILL to `uv run` would not reach its child). Foreground commands use `uv run`.
PY=$(uv run --quiet python -c 'import sys; print(sys.executable)')
ROOST=$(dirname "$PY")/roost
[ -x "$ROOST" ] || die "no roost executable next to $PY (run uv sync)"

PIDS=()
cleanup() {
    local code=$?
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -z "${ROOST_REDIS_URL:-}" ]; then
        "$ROOST" server stop >/dev/null 2>&1 || true
    fi
    if [ "$code" -ne 0 ]; then
        for f in "$TMP"/*.log; do
            [ -f "$f" ] && { echo "----- $f"; tail -n 40 "$f"; }
        done
    fi
    rm -rf "$TMP"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${ROOST_REDIS_URL:-}" ]; then
    log "redis: ROOST_REDIS_URL=$ROOST_REDIS_URL, namespace $ROOST_NAMESPACE"
else
    log "redis: embedded, ROOST_HOME=$ROOST_HOME, namespace $ROOST_NAMESPACE"
fi

# 1. A local HTTP target (this machine may have no internet).
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/site"
echo "hello from the e2e target" > "$TMP/site/index.html"
"$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$TMP/site" >"$TMP/http.log" 2>&1 &
PIDS+=($!)
URL="http://127.0.0.1:$PORT/"
"$PY" - "$URL" <<'PYEOF' || die "the HTTP target did not start"
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1).read()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PYEOF
log "HTTP target at $URL"

start_worker() {
    "$ROOST" worker --engines watchlist >"$TMP/worker-$1.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
    log "worker $1 started (pid $WORKER_PID)"
}

# 2. A worker, then the seed's enqueue.
start_worker 1
PAYLOAD=$(printf '{"url":"%s","claim":"The e2e target is reachable","checks_required":%d,"delay_seconds":%d}' "$URL" "$CHECKS" "$DELAY")
WORK_ID=$(uv run roost enqueue \
    --engine watchlist \
    --resource domain:127.0.0.1 \
    --payload "$PAYLOAD")
[[ "$WORK_ID" =~ ^[0-9a-f]{32}$ ]] || die "enqueue printed '$WORK_ID', not a work id"
log "enqueued $WORK_ID"

# 3. Wait for the first committed check (version 2) in the worker's own step lines.
deadline=$((SECONDS + TIMEOUT))
until grep -Eq "committed +$WORK_ID +v2 " "$TMP/worker-1.log"; do
    kill -0 "$WORKER_PID" 2>/dev/null || die "worker 1 exited early"
    [ $SECONDS -lt $deadline ] || die "no check committed within ${TIMEOUT}s"
    sleep 0.05
done
kill -9 "$WORKER_PID"
wait "$WORKER_PID" 2>/dev/null || true
log "first check committed: worker 1 SIGKILLed"

uv run roost status "$WORK_ID" >"$TMP/before.json"
"$PY" - "$TMP/before.json" "$CHECKS" <<'PYEOF' || die "unexpected status after the kill"
import json, sys
status = json.load(open(sys.argv[1]))
checks = int(sys.argv[2])
done = status["snapshot"]["data"]["checks_completed"]
assert status["meta"]["state"] != "done", "the work finished before the kill: nothing was tested"
assert 1 <= done < checks, f"checks_completed {done} after the kill"
print(f"[e2e] after the kill: state {status['meta']['state']}, version "
      f"{status['snapshot']['version']}, {done}/{checks} checks saved")
PYEOF

# 4. A new worker resumes the work.
sleep 1
start_worker 2
deadline=$((SECONDS + TIMEOUT))
while true; do
    STATE=$(uv run roost status "$WORK_ID" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["meta"]["state"])')
    [ "$STATE" = done ] && break
    case "$STATE" in failed|dead|cancelled) die "the work ended $STATE";; esac
    kill -0 "$WORKER_PID" 2>/dev/null || die "worker 2 exited early"
    [ $SECONDS -lt $deadline ] || die "not done within ${TIMEOUT}s (state $STATE)"
    sleep 0.3
done
log "done"

# 5. The final status must show a resumed run, not a restarted one.
uv run roost status "$WORK_ID" >"$TMP/final.json"
ARTIFACT_ID=$("$PY" - "$TMP/before.json" "$TMP/final.json" "$CHECKS" <<'PYEOF'
import json, sys
before = json.load(open(sys.argv[1]))
final = json.load(open(sys.argv[2]))
checks = int(sys.argv[3])
meta, snap = final["meta"], final["snapshot"]
data = snap["data"]
obs = data["observations"]
errors = []
if meta["state"] != "done":
    errors.append(f"state {meta['state']}")
if data["checks_completed"] != checks:
    errors.append(f"checks_completed {data['checks_completed']} != {checks}")
if len(obs) != checks:
    errors.append(f"{len(obs)} observations for {checks} checks")
if [o["check"] for o in obs] != list(range(1, checks + 1)):
    errors.append(f"check numbers {[o['check'] for o in obs]}")
if len({o["time"] for o in obs}) != len(obs):
    errors.append("two observations share a time")
if snap["version"] != checks + 1:
    errors.append(f"version {snap['version']} != {checks + 1}")
kept = before["snapshot"]["data"]["observations"]
if obs[: len(kept)] != kept:
    errors.append("observations committed before the kill changed")
if data["verdict"] != "reachable" or not all(o["ok"] for o in obs):
    errors.append(f"verdict {data['verdict']}")
arts = snap["artifacts"]
if len(arts) != 1 or arts[0]["metadata"] != {"verdict": data["verdict"], "checks_completed": checks}:
    errors.append(f"artifacts {arts}")
if errors:
    sys.exit("mismatch: " + "; ".join(errors))
workers = sorted({o["worker"] for o in obs})
print(arts[0]["artifact_id"])
print(f"[e2e] final: done, version {snap['version']}, {checks}/{checks} checks, "
      f"{len(kept)} kept from before the kill, made by {len(workers)} workers", file=sys.stderr)
PYEOF
) || die "the final status does not match"

# 6. The evidence report, as the seed prints it.
log "evidence report (roost artifact-show $ARTIFACT_ID --ext json):"
uv run roost artifact-show "$ARTIFACT_ID" --ext json | tee "$TMP/report.json"
"$PY" - "$TMP/report.json" "$CHECKS" <<'PYEOF' || die "the evidence report does not match"
import json, sys
report = json.load(open(sys.argv[1]))
assert report["verdict"] == "reachable", report["verdict"]
assert report["checks_completed"] == int(sys.argv[2]), report["checks_completed"]
assert len(report["observations"]) == int(sys.argv[2])
PYEOF

kill -TERM "$WORKER_PID"
deadline=$((SECONDS + 30))
while kill -0 "$WORKER_PID" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "worker 2 did not stop within 30s of SIGTERM"
    sleep 0.1
done
wait "$WORKER_PID" || die "worker 2 exited with status $? on SIGTERM"
log "worker 2 stopped on SIGTERM"
log "e2e ok: the work resumed after SIGKILL and finished with $CHECKS checks"
