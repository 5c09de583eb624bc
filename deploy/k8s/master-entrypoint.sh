#!/bin/sh
# The Locust master of a peakload run in Kubernetes: run headless until the profile ends,
# then build the reports and the gate verdict into the results volume.
#   peakload-master [--shard I/N] [--start-at T]
#     --shard I/N   this master is shard I (0 <= I < N) of N: exported as PEAKLOAD_SHARD, results in
#                   $RESULTS_ROOT/$PEAKLOAD_RUN_ID/shard-I/ (without it: $RESULTS_ROOT/$PEAKLOAD_RUN_ID/)
#     --start-at T  the instant every shard's schedule starts (exported as PEAKLOAD_START_AT)
#                   both default to the variables of the same name; docs/kubernetes.md
#   env: PEAKLOAD_RUN_ID, PEAKLOAD_PROFILE, TARGET_URL, WORKERS, RESULTS_ROOT (default /results)
#        PEAKLOAD_METRICS_PORT (9646), PEAKLOAD_METRICS_HOST (0.0.0.0 so Prometheus can scrape the pod)
#        MASTER_BIND_HOST (0.0.0.0), MASTER_PORT (5557), LOCUSTFILE (/app/locustfile.py)
# Last act: writes the gate's exit code to <results>/.master-done (the merge Job waits for it; 2 when the
# start or the profile could not be read, so the merge goes on and reports the shard incomplete).
set -u
SHARD="${PEAKLOAD_SHARD:-}"
START_AT="${PEAKLOAD_START_AT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --shard) [ $# -ge 2 ] || { echo "peakload-master: --shard needs I/N" >&2; exit 2; }; SHARD="$2"; shift 2 ;;
    --shard=*) SHARD="${1#*=}"; shift ;;
    --start-at) [ $# -ge 2 ] || { echo "peakload-master: --start-at needs a time" >&2; exit 2; }; START_AT="$2"; shift 2 ;;
    --start-at=*) START_AT="${1#*=}"; shift ;;
    *) echo "peakload-master: unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$START_AT" in
  *'$('*) echo "peakload-master: --start-at '$START_AT' was not expanded (is PEAKLOAD_START_AT in the peakload-run ConfigMap?)" >&2; exit 2 ;;
esac
RESULTS_ROOT="${RESULTS_ROOT:-/results}"
RUN_DIR="$RESULTS_ROOT/$PEAKLOAD_RUN_ID"
if [ -n "$SHARD" ]; then
  index="${SHARD%%/*}"; of="${SHARD#*/}"
  case "$index/$of" in
    */*/* | /* | */ | *[!0-9/]*) echo "peakload-master: --shard expects I/N (e.g. 0/3), got '$SHARD'" >&2; exit 2 ;;
  esac
  if [ "$of" -lt 1 ] || [ "$index" -ge "$of" ]; then
    echo "peakload-master: --shard expects 0 <= I < N, got '$SHARD'" >&2; exit 2
  fi
  [ -n "$START_AT" ] || [ "$of" -eq 1 ] || { echo "peakload-master: shard $SHARD needs --start-at (one start for all shards)" >&2; exit 2; }
  export PEAKLOAD_SHARD="$SHARD"
  RUN_DIR="$RUN_DIR/shard-$index"
fi
[ -n "$START_AT" ] && export PEAKLOAD_START_AT="$START_AT"
mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR/.master-done"
export PEAKLOAD_RESULTS_DIR="$RUN_DIR"
# run.json, profile.yaml and slo.yaml: peakload's Locust plugin writes them into PEAKLOAD_RESULTS_DIR (a plain
# Locust run's folder: launched_by "locust", the shard, the start and the arrivals plan). Here: refuse a bad start.
python - <<PY || { echo 2 > "$RUN_DIR/.master-done"; exit 2; }
import sys
from peakload.core.shard import check_start_at, parse_start_at
try:  # as peakload run --start-at: an instant with its zone or epoch s, from now to 24 h ahead
    check_start_at(parse_start_at("$START_AT")) if "$START_AT" else None
except ValueError as exc:
    sys.exit(f"peakload-master: --start-at: {exc}")
PY
locust -f "${LOCUSTFILE:-/app/locustfile.py}" --master --headless --expect-workers "$WORKERS" \
  --master-bind-host "${MASTER_BIND_HOST:-0.0.0.0}" --master-bind-port "${MASTER_PORT:-5557}" --host "$TARGET_URL" \
  --csv "$RUN_DIR/locust" --only-summary --loglevel WARNING --logfile "$RUN_DIR/locust.log" \
  --stop-timeout 10 --exit-code-on-error 0
echo "{\"locust_exit_code\": $?}" > "$RUN_DIR/outcome.json"
# summary.json, junit.xml, summary.md, report.html + the verdict (exit 0 pass, 1 threshold failed, 3 invalid)
peakload gate "$RUN_DIR"
code=$?
echo "$code" > "$RUN_DIR/.master-done"
echo "peakload gate: exit $code; results in $RUN_DIR (collect: see docs/kubernetes.md)"
exit $code
