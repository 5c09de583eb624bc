#!/usr/bin/env python3
"""Write the Kubernetes manifests of one peakload run: N shards x M workers, plain YAML.

    python deploy/k8s/render.py --shards 3 --workers 4 --start-at 2026-11-11T00:00:00Z \\
        --run-id 20261111T000000Z-fleet --target http://storefront.shop.svc.cluster.local:8080 --out k8s-run
    kubectl apply -k k8s-run

Each shard ``i`` (0 <= i < N) is one Service + master Job ``peakload-master-<i>`` (entrypoint args
``--shard i/N --start-at $(PEAKLOAD_START_AT)``) and one workers Job ``peakload-workers-<i>`` (M pods
that connect to their shard's master). Every shard writes ``/results/<run-id>/shard-<i>/`` on one
ReadWriteMany volume; the Job ``peakload-merge`` waits for every shard's ``.master-done`` and runs
``peakload merge`` over the shard folders into ``/results/<run-id>/merged/`` (its exit is the fleet's verdict).

``--shards 1`` writes the single-master recipe: exactly the objects of the files in deploy/k8s/
(tests/deploy/test_k8s_manifests.py checks that), no shard arguments, ``/results/<run-id>/``, no merge.
Only the standard library and PyYAML; docs/kubernetes.md has the whole recipe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

IMAGE = "REGISTRY/peakload:0.1.0"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
SHARD_LABEL = "peakload.io/shard"
DONE_MARKER = ".master-done"  # written by master-entrypoint.sh as its last act (content: the gate's exit code)
# the files `kubectl apply -k` applies; collect.yaml is applied by hand when a run is fetched
KUSTOMIZATION = "kustomization.yaml"
COLLECT = "collect.yaml"

Obj = dict[str, Any]


def _labels(component: str | None = None, shard: int | None = None) -> dict[str, str]:
    out = {NAME: "peakload"}
    if component:
        out[COMPONENT] = component
    if shard is not None:
        out[SHARD_LABEL] = str(shard)
    return out


def _config_volume() -> Obj:
    return {"name": "config", "configMap": {"name": "peakload-config"}}


def _results_volume() -> Obj:
    return {"name": "results", "persistentVolumeClaim": {"claimName": "peakload-results"}}


def run_config(
    *, run_id: str, profile: str, target: str, workers: int, scale: str, shards: int, start_at: str | None, merge_wait: int = 86400
) -> Obj:
    data = {
        "PEAKLOAD_RUN_ID": run_id,
        "PEAKLOAD_PROFILE": profile,
        "TARGET_URL": target,
        "WORKERS": str(workers),
        "PEAKLOAD_SCALE": scale,
        "PEAKLOAD_SNAPSHOT_INTERVAL": "2",
        "PEAKLOAD_METRICS_PORT": "9646",
        "PEAKLOAD_METRICS_HOST": "0.0.0.0",
    }
    if shards > 1:
        data["SHARDS"] = str(shards)
        data["PEAKLOAD_START_AT"] = start_at or ""
        data["MERGE_WAIT_SECONDS"] = str(merge_wait)  # how long peakload-merge waits for the slowest shard
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "peakload-run", "labels": _labels()}, "data": data}


def results_pvc(*, shards: int, storage: str, storage_class: str | None) -> Obj:
    # one master writes with ReadWriteOnce; N masters on N nodes (and the merge) need ReadWriteMany
    spec: Obj = {"accessModes": ["ReadWriteOnce" if shards == 1 else "ReadWriteMany"], "resources": {"requests": {"storage": storage}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "peakload-results", "labels": _labels()},
        "spec": spec,
    }


def master(*, shard: int | None, shards: int, image: str) -> list[Obj]:
    """Service + Job of one shard's master (``shard`` None: the single-master recipe)."""
    suffix = "" if shard is None else f"-{shard}"
    name = f"peakload-master{suffix}"
    labels = _labels("master", shard)
    container: Obj = {
        "name": "master",
        "image": image,
        "command": ["peakload-master"],
        # $(VAR) is expanded by the kubelet from the container's environment (the peakload-run ConfigMap)
        "args": [] if shard is None else ["--shard", f"{shard}/{shards}", "--start-at", "$(PEAKLOAD_START_AT)"],
        "envFrom": [{"configMapRef": {"name": "peakload-run"}}],
        "ports": [{"name": "zmq", "containerPort": 5557}, {"name": "metrics", "containerPort": 9646}],
        "resources": {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/peakload/config", "readOnly": True},
            {"name": "results", "mountPath": "/results"},
        ],
    }
    if not container["args"]:
        del container["args"]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [{"name": "zmq", "port": 5557, "targetPort": 5557}, {"name": "metrics", "port": 9646, "targetPort": 9646}],
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9646", "prometheus.io/path": "/metrics"},
                },
                "spec": {"restartPolicy": "Never", "containers": [container], "volumes": [_config_volume(), _results_volume()]},
            },
        },
    }
    return [service, job]


def workers(*, shard: int | None, count: int, image: str) -> Obj:
    suffix = "" if shard is None else f"-{shard}"
    labels = _labels("worker", shard)
    command = f'exec locust -f "${{LOCUSTFILE:-/app/locustfile.py}}" --worker --master-host peakload-master{suffix} --master-port 5557 --loglevel WARNING'
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"peakload-workers{suffix}", "labels": labels},
        "spec": {
            "parallelism": count,
            "completions": count,
            "backoffLimit": 4,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "command": ["sh", "-c"],
                            "args": [command],
                            "envFrom": [{"configMapRef": {"name": "peakload-run"}}],
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
                            "volumeMounts": [{"name": "config", "mountPath": "/peakload/config", "readOnly": True}],
                        }
                    ],
                    "volumes": [_config_volume()],
                },
            },
        },
    }


def merge_script(shards: int) -> str:
    """The merge container's shell: wait for every shard's done marker (or the deadline), then merge them all.

    A shard that never finished is still passed to ``peakload merge``, which reports the run incomplete
    (exit 3, the shard named) instead of a partial pass.
    """
    folders = " ".join(f'"$RUN/shard-{i}"' for i in range(shards))
    return (
        'RUN="${RESULTS_ROOT:-/results}/$PEAKLOAD_RUN_ID"\n'
        "deadline=$(( $(date +%s) + ${MERGE_WAIT_SECONDS:-86400} ))\n"
        f"for i in $(seq 0 {shards - 1}); do\n"
        f'  while [ ! -f "$RUN/shard-$i/{DONE_MARKER}" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 10; done\n'
        f'  [ -f "$RUN/shard-$i/{DONE_MARKER}" ] || echo "peakload-merge: shard $i did not finish before the deadline" >&2\n'
        "done\n"
        f'exec peakload merge {folders} --out "$RUN/merged"\n'
    )


def merge_job(*, shards: int, image: str) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "peakload-merge", "labels": _labels("merge")},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": _labels("merge")},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "merge",
                            "image": image,
                            "command": ["sh", "-c"],
                            "args": [merge_script(shards)],
                            "envFrom": [{"configMapRef": {"name": "peakload-run"}}],
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
                            "volumeMounts": [{"name": "results", "mountPath": "/results"}],
                        }
                    ],
                    "volumes": [_results_volume()],
                },
            },
        },
    }


def collect(*, image: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "peakload-collect", "labels": _labels("collect")},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "collect",
                    "image": image,
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "results", "mountPath": "/results"}],
                }
            ],
            "volumes": [_results_volume()],
        },
    }


def render(
    shards: int = 1,
    workers_per_shard: int = 8,
    *,
    run_id: str = "20261111T000000Z-k8s1",
    profile: str = "/peakload/config/singles-day-open.yaml",
    target: str = "http://storefront.shop.svc.cluster.local:8080",
    scale: str = "1",
    start_at: str | None = None,
    image: str = IMAGE,
    storage: str = "5Gi",
    storage_class: str | None = None,
    merge_wait: int = 86400,
) -> dict[str, list[Obj]]:
    """file name -> the objects it holds (kustomization.yaml not included: see :func:`kustomization`)."""
    if shards < 1 or workers_per_shard < 1:
        raise ValueError("--shards and --workers must be >= 1")
    if shards > 1 and not (start_at or "").strip():
        raise ValueError("--start-at is required with --shards > 1: every shard's schedule starts at that one instant")
    files: dict[str, list[Obj]] = {
        "run-config.yaml": [
            run_config(
                run_id=run_id,
                profile=profile,
                target=target,
                workers=workers_per_shard,
                scale=scale,
                shards=shards,
                start_at=start_at,
                merge_wait=merge_wait,
            )
        ],
        "results-pvc.yaml": [results_pvc(shards=shards, storage=storage, storage_class=storage_class)],
    }
    if shards == 1:
        files["master.yaml"] = master(shard=None, shards=1, image=image)
        files["workers.yaml"] = [workers(shard=None, count=workers_per_shard, image=image)]
    else:
        for i in range(shards):
            files[f"shard-{i}.yaml"] = [
                *master(shard=i, shards=shards, image=image),
                workers(shard=i, count=workers_per_shard, image=image),
            ]
        files["merge.yaml"] = [merge_job(shards=shards, image=image)]
    files[COLLECT] = [collect(image=image)]
    return files


def kustomization(files: dict[str, list[Obj]]) -> Obj:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [name for name in files if name != COLLECT],
    }


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no anchors for shared label maps, shell scripts as ``|`` blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def dump(objs: list[Obj]) -> str:
    return "---\n".join(yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=200) for obj in objs)


def write(out: Path, files: dict[str, list[Obj]]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    header = "# generated by deploy/k8s/render.py; edit the command line, not this file\n"
    for name, objs in {**files, KUSTOMIZATION: [kustomization(files)]}.items():
        text = dump(objs)
        path = out / name
        path.write_text(header + text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=1, help="Locust masters (N); default 1")
    ap.add_argument("--workers", type=int, default=8, help="worker pods per shard (M); default 8")
    ap.add_argument(
        "--start-at", help="the one instant every shard's schedule starts (required with N > 1), as peakload run --start-at takes it"
    )
    ap.add_argument("--run-id", default="20261111T000000Z-k8s1", help="new for every run: names results/<run-id>/ and tags shadow traffic")
    ap.add_argument("--target", default="http://storefront.shop.svc.cluster.local:8080", help="the shop's URL")
    ap.add_argument("--profile", default="/peakload/config/singles-day-open.yaml", help="profile path inside the pods")
    ap.add_argument("--scale", default="1")
    ap.add_argument("--image", default=IMAGE)
    ap.add_argument("--storage", default="5Gi", help="size of the results volume")
    ap.add_argument("--storage-class", help="storage class of the results volume (N > 1 needs one that offers ReadWriteMany)")
    ap.add_argument("--merge-wait", type=int, default=86400, help="seconds peakload-merge waits for every shard to finish; default 86400")
    ap.add_argument("--out", type=Path, required=True, help="folder to write the YAML files into")
    args = ap.parse_args(argv)
    try:
        files = render(
            args.shards,
            args.workers,
            run_id=args.run_id,
            profile=args.profile,
            target=args.target,
            scale=args.scale,
            start_at=args.start_at,
            image=args.image,
            storage=args.storage,
            storage_class=args.storage_class,
            merge_wait=args.merge_wait,
        )
    except ValueError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    for path in write(args.out, files):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
