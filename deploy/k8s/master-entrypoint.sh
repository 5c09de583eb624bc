#!/bin/sh
# The Locust master of a peakload run in Kubernetes: run headless until the profile ends,
# then build the reports and the gate verdict into the results volume.
#   env: PEAKLOAD_RUN_ID, PEAKLOAD_PROFILE, TARGET_URL, WORKERS, RESULTS_ROOT (default /results)
#        PEAKLOAD_METRICS_PORT (9646), PEAKLOAD_METRICS_HOST (0.0.0.0 so Prometheus can scrape the pod)
#        MASTER_BIND_HOST (0.0.0.0), MASTER_PORT (5557), LOCUSTFILE (/app/locustfile.py)
set -u
RESULTS_ROOT="${RESULTS_ROOT:-/results}"
RUN_DIR="$RESULTS_ROOT/$PEAKLOAD_RUN_ID"
CONFIG_DIR="$(dirname "$PEAKLOAD_PROFILE")"
mkdir -p "$RUN_DIR"
export PEAKLOAD_RESULTS_DIR="$RUN_DIR"
cp "$PEAKLOAD_PROFILE" "$RUN_DIR/profile.yaml"
[ -f "$CONFIG_DIR/slo.yaml" ] && cp "$CONFIG_DIR/slo.yaml" "$RUN_DIR/slo.yaml"
python - <<PY
import json, time, yaml
name = yaml.safe_load(open("$PEAKLOAD_PROFILE")).get("name")
json.dump({"run_id": "$PEAKLOAD_RUN_ID", "profile": name, "profile_path": "$PEAKLOAD_PROFILE", "target": "$TARGET_URL",
           "workers": int("$WORKERS"), "started_ts": time.time(), "embedded": False, "kubernetes": True},
          open("$RUN_DIR/run.json", "w"), indent=2)
PY
locust -f "${LOCUSTFILE:-/app/locustfile.py}" --master --headless --expect-workers "$WORKERS" \
  --master-bind-host "${MASTER_BIND_HOST:-0.0.0.0}" --master-bind-port "${MASTER_PORT:-5557}" --host "$TARGET_URL" \
  --csv "$RUN_DIR/locust" --only-summary --loglevel WARNING --logfile "$RUN_DIR/locust.log" \
  --stop-timeout 10 --exit-code-on-error 0
echo "{\"locust_exit_code\": $?}" > "$RUN_DIR/outcome.json"
# summary.json, junit.xml, summary.md, report.html + the verdict (exit 0 pass, 1 threshold failed, 3 invalid)
peakload gate "$RUN_DIR"
code=$?
echo "peakload gate: exit $code; results in $RUN_DIR (collect: see docs/kubernetes.md)"
exit $code
