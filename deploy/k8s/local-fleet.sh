#!/bin/bash
# The pods of a fleet, as processes on this machine: the storefront, N x (master-entrypoint.sh --shard i/N
# --start-at T + one `locust --worker` over TCP), then the merge Job's script (render.py merge_script) over
# the shard folders. A check of the entrypoint and the merge wiring by hand; not part of `make test`.
#   deploy/k8s/local-fleet.sh [SHARDS (2)] [OUT (/tmp/peakload-fleet)]     run from the repository root
# Environment like the run ConfigMap: PEAKLOAD_PROFILE (profiles/singles-day-open.yaml), PEAKLOAD_SCALE (0.2),
# PEAKLOAD_DURATION (12); exit status: the merge's (0 pass, 1 a threshold failed, 3 invalid or incomplete).
set -u
N="${1:-2}"
OUT="${2:-/tmp/peakload-fleet}"
BIN="$(pwd)/.venv/bin"
[ -x "$BIN/peakload" ] || { echo "run from the repository root after make venv" >&2; exit 2; }
rm -rf "$OUT" && mkdir -p "$OUT/config" "$OUT/logs"
cp "${PEAKLOAD_PROFILE:-profiles/singles-day-open.yaml}" profiles/slo.yaml "$OUT/config/"
export PATH="$BIN:$PATH"
python -m storefront serve --port 0 --port-file "$OUT/url" --reset --db "sqlite:///$OUT/shop.db" > "$OUT/logs/shop.log" 2>&1 &
SHOP=$!
trap 'kill $SHOP $WORKERS_PIDS 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$OUT/url" ] && break; sleep 0.2; done
[ -s "$OUT/url" ] || { echo "the storefront did not start: $OUT/logs/shop.log" >&2; exit 2; }
export TARGET_URL="$(cat "$OUT/url")" RESULTS_ROOT="$OUT/results" PEAKLOAD_RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)-local"
export PEAKLOAD_PROFILE="$OUT/config/$(basename "${PEAKLOAD_PROFILE:-singles-day-open.yaml}")"
export WORKERS=1 PEAKLOAD_SCALE="${PEAKLOAD_SCALE:-0.2}" PEAKLOAD_DURATION="${PEAKLOAD_DURATION:-12}" PEAKLOAD_SNAPSHOT_INTERVAL=2
export LOCUSTFILE="$(pwd)/locustfile.py" MASTER_BIND_HOST=127.0.0.1
START_AT="$(python -c 'import time; print(f"{time.time() + 5 + 2 * '"$N"':.3f}")')"
MASTERS="" WORKERS_PIDS=""
for i in $(seq 0 $((N - 1))); do
  port=$((25557 + i))
  MASTER_PORT=$port sh deploy/k8s/master-entrypoint.sh --shard "$i/$N" --start-at "$START_AT" > "$OUT/logs/master-$i.log" 2>&1 &
  MASTERS="$MASTERS $!"
  locust -f "$LOCUSTFILE" --worker --master-host 127.0.0.1 --master-port $port --loglevel WARNING > "$OUT/logs/worker-$i.log" 2>&1 &
  WORKERS_PIDS="$WORKERS_PIDS $!"
done
i=0
for pid in $MASTERS; do wait "$pid"; echo "shard $i/$N: master exit $?"; i=$((i + 1)); done
MERGE_WAIT_SECONDS=60 sh -c "$(python -c 'import sys; sys.path.insert(0, "deploy/k8s"); import render; print(render.merge_script('"$N"'))')" \
  > "$OUT/logs/merge.log" 2>&1
code=$?
grep -E "^merged|problem:|^run " "$OUT/logs/merge.log"
echo "merge exit $code; folders in $RESULTS_ROOT/$PEAKLOAD_RUN_ID, logs in $OUT/logs"
exit $code
