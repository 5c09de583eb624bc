"""The Kubernetes manifests in deploy/k8s/ and the ones deploy/k8s/render.py writes, against the Kubernetes OpenAPI schemas.

Schemas: the ``kubernetes-validate`` package (PyPI), which bundles the JSON schemas of every
Kubernetes version it supports and reads nothing from the network (checked below with sockets
refused). Pinned to :data:`K8S_VERSION`, strict mode (an unknown field is an error, as it is for
``kubectl apply --validate=strict``). What the schemas do not check (names, the wiring between
shards, workers and the merge) is checked by hand below. Not done here: ``kubectl apply`` to a cluster.

Not Kubernetes objects, so not schema-validated:
* ``kustomization.yaml`` — read as a plain resource list (``resources:`` only; anything else is refused,
  so a patch could never change what was validated), and every object it lists is validated;
* ``helm-values-deliveryhero.yaml`` — values of the deliveryhero/locust chart: parsed, and every key it
  sets must be one the chart documents (:data:`CHART_VALUE_KEYS`).
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
K8S_VERSION = "1.30.0"  # the schemas every manifest must pass; kubernetes-validate 1.37 bundles 1.25 .. 1.37
NOT_KUSTOMIZED = {"collect.yaml": "applied by hand to fetch a run (kubectl apply -f)"}
NOT_OBJECTS = {"kustomization.yaml": "a kustomize resource list", "helm-values-deliveryhero.yaml": "Helm chart values"}
FLEET = {"shards": 3, "workers": 4}  # the rendered fleet these tests validate
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# deliveryhero/locust chart 0.26.1, values.yaml (https://github.com/deliveryhero/helm-charts/blob/master/stable/locust/values.yaml):
# every documented key path. A value under a "free map" key (environment, resources, annotations ...) is the user's own.
CHART_VALUE_KEYS = {
    "loadtest": [
        "name",
        "locust_locustfile",
        "locust_locustfile_path",
        "locust_locustfile_configmap",
        "locust_lib_configmap",
        "locust_host",
        "pip_packages",
        "environment",
        "environment_secret",
        "environment_external_secret",
        "mount_external_secret",
        "headless",
        "tags",
        "excludeTags",
        "locustCmd",
    ],
    "image": ["repository", "tag", "pullPolicy"],
    "service": ["type", "annotations", "extraLabels"],
    "master": [
        "image",
        "logLevel",
        "resources",
        "serviceAccountAnnotations",
        "deploymentAnnotations",
        "envs_include_default",
        "environment",
        "args",
        "command",
        "strategy",
        "pdb",
        "auth",
        "restartPolicy",
    ],
    "worker": [
        "image",
        "logLevel",
        "replicas",
        "hpa",
        "resources",
        "serviceAccountAnnotations",
        "deploymentAnnotations",
        "envs_include_default",
        "environment",
        "args",
        "command",
        "strategy",
        "restartPolicy",
    ],
    "nameOverride": [],
    "fullnameOverride": [],
    "imagePullSecrets": [],
    "podSecurityContext": [],
    "securityContext": [],
    "ingress": [],
    "extraConfigMaps": [],
    "nodeSelector": [],
    "tolerations": [],
    "affinity": [],
    "extraLabels": [],
}


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("peakload_k8s_render", K8S / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _render_module()


def kustomized_objects(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file, object) for every object a plain-resource-list kustomization.yaml applies."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kust["kind"] == "Kustomization" and kust["apiVersion"].startswith("kustomize.config.k8s.io/")
    extra = set(kust) - {"apiVersion", "kind", "resources"}
    assert not extra, f"kustomization.yaml uses {sorted(extra)}: this reader only understands a resource list, teach it first"
    out = []
    for name in kust["resources"]:
        path = folder / name
        assert path.is_file() and path.suffix == ".yaml", f"{name}: not a YAML file in {folder}"
        out += [(name, obj) for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")) if obj is not None]
    return out


def file_objects(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, obj) for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")) if obj is not None]


def validate_all(objs: list[tuple[str, dict[str, Any]]]) -> None:
    failures = []
    for name, obj in objs:
        try:
            assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True) == "1.30"
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}")
        name_ok = DNS1123_LABEL.match(obj["metadata"]["name"])
        if not name_ok:
            failures.append(f"{name}: {obj['metadata']['name']!r} is not a DNS-1123 label (Services and Jobs need one)")
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet")
    args = ["--shards", str(FLEET["shards"]), "--workers", str(FLEET["workers"]), "--start-at", "2026-11-11T00:00:00Z", "--out", str(out)]
    args += ["--run-id", "20261111T000000Z-fleet", "--storage-class", "nfs"]
    assert render.main(args) == 0
    return out


# ---------------------------------------------------------------- the validator itself


def test_the_pinned_schemas_are_bundled_and_read_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "1.30.0" in kv_utils.all_versions()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("kubernetes-validate tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pvc = file_objects(K8S / "results-pvc.yaml")[0][1]
    assert kubernetes_validate.validate(pvc, K8S_VERSION, strict=True) == "1.30"


def _job() -> dict[str, Any]:
    return copy.deepcopy(next(obj for _, obj in file_objects(K8S / "workers.yaml")))


def _wrong_type(job: dict[str, Any]) -> None:
    job["spec"]["parallelism"] = "eight"


def _unknown_field(job: dict[str, Any]) -> None:
    job["spec"]["template"]["spec"]["containers"][0]["envFrm"] = [{"configMapRef": {"name": "peakload-run"}}]


def _missing_required(job: dict[str, Any]) -> None:
    del job["spec"]["template"]["spec"]["containers"][0]["name"]


def _bad_volume_source(job: dict[str, Any]) -> None:
    job["spec"]["template"]["spec"]["volumes"][0]["configMap"] = "peakload-config"


@pytest.mark.parametrize("breakage", [_wrong_type, _unknown_field, _missing_required, _bad_volume_source])
def test_a_broken_copy_of_a_manifest_fails(breakage: Any) -> None:
    kubernetes_validate.validate(_job(), K8S_VERSION, strict=True)  # the unbroken one passes
    job = _job()
    breakage(job)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    with pytest.raises(AssertionError, match="workers.yaml: Job/peakload-workers"):
        validate_all([("workers.yaml", job)])


def test_strict_mode_is_what_catches_an_unknown_field() -> None:
    job = _job()
    _unknown_field(job)
    kubernetes_validate.validate(job, K8S_VERSION, strict=False)  # the lax schemas let a typo through ...
    with pytest.raises(kubernetes_validate.ValidationError, match="envFrm"):  # ... which is why the tests use strict
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_a_name_kubernetes_refuses_fails() -> None:
    job = _job()
    job["metadata"]["name"] = "Peakload_Workers"  # the schema takes any string; the API server does not
    with pytest.raises(AssertionError, match="DNS-1123"):
        validate_all([("workers.yaml", job)])


# ---------------------------------------------------------------- the files in deploy/k8s/


def test_every_yaml_file_in_deploy_k8s_is_validated_or_listed_as_not_an_object() -> None:
    kustomized = {name for name, _ in kustomized_objects(K8S)}
    on_disk = {p.name for p in K8S.glob("*.y*ml")}
    assert on_disk == kustomized | set(NOT_KUSTOMIZED) | set(NOT_OBJECTS)


def test_the_static_manifests_validate() -> None:
    objs = kustomized_objects(K8S) + file_objects(K8S / "collect.yaml")
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for _, o in objs)
    assert kinds == [
        "ConfigMap/peakload-run",
        "Job/peakload-master",
        "Job/peakload-workers",
        "PersistentVolumeClaim/peakload-results",
        "Pod/peakload-collect",
        "Service/peakload-master",
    ]
    validate_all(objs)


def test_the_static_manifests_are_what_render_writes_for_one_shard() -> None:
    """deploy/k8s/*.yaml (hand-commented) and render.py --shards 1 cannot drift apart."""
    files = render.render()
    for name, objs in files.items():
        assert [o for _, o in file_objects(K8S / name)] == objs, f"deploy/k8s/{name} differs from render.py --shards 1"
    assert yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8")) == render.kustomization(files)


# ---------------------------------------------------------------- a rendered fleet: N shards x M workers


def test_the_rendered_fleet_validates(fleet: Path) -> None:
    objs = kustomized_objects(fleet) + file_objects(fleet / "collect.yaml")
    n = FLEET["shards"]
    assert len(objs) == 2 + 3 * n + 1 + 1  # ConfigMap + PVC, per shard Service + 2 Jobs, merge Job, collect Pod
    validate_all(objs)
    assert {p.name for p in fleet.iterdir()} == {name for name, _ in kustomized_objects(fleet)} | {"collect.yaml", "kustomization.yaml"}


def test_the_fleet_is_wired_shard_by_shard(fleet: Path) -> None:
    n, m = FLEET["shards"], FLEET["workers"]
    objs = [o for _, o in kustomized_objects(fleet)]
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    assert len(by) == len(objs), "two objects of one kind share a name"
    run = by["ConfigMap", "peakload-run"]["data"]
    assert run["WORKERS"] == str(m) and run["SHARDS"] == str(n) and run["PEAKLOAD_START_AT"] == "2026-11-11T00:00:00Z"
    assert int(run["MERGE_WAIT_SECONDS"]) > 0
    pvc = by["PersistentVolumeClaim", "peakload-results"]["spec"]
    assert pvc["accessModes"] == ["ReadWriteMany"] and pvc["storageClassName"] == "nfs"  # n masters on n nodes write to it
    for i in range(n):
        service, master = by["Service", f"peakload-master-{i}"], by["Job", f"peakload-master-{i}"]
        workers = by["Job", f"peakload-workers-{i}"]
        pod = master["spec"]["template"]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        # no other shard's master pod matches this shard's Service
        for j in range(n):
            other = by["Job", f"peakload-master-{j}"]["spec"]["template"]["metadata"]["labels"]
            assert (service["spec"]["selector"].items() <= other.items()) == (i == j)
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["peakload-master"]
        assert container["args"] == ["--shard", f"{i}/{n}", "--start-at", "$(PEAKLOAD_START_AT)"]
        assert {"configMapRef": {"name": "peakload-run"}} in container["envFrom"]  # where $(PEAKLOAD_START_AT) comes from
        assert master["spec"]["backoffLimit"] == 0
        assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == m
        (wc,) = workers["spec"]["template"]["spec"]["containers"]
        assert f"--master-host peakload-master-{i} " in wc["args"][0]
        assert "PEAKLOAD_SHARD" not in str(wc), "workers get their global slot from their master, not a shard of their own"
    merge = by["Job", "peakload-merge"]["spec"]["template"]["spec"]
    assert merge["volumes"][0]["persistentVolumeClaim"]["claimName"] == "peakload-results"
    script = merge["containers"][0]["args"][0]
    assert all(f'"$RUN/shard-{i}"' in script for i in range(n)) and f'"$RUN/shard-{n}"' not in script
    subprocess.run(["sh", "-n", "-c", script], check=True)


def test_render_refuses_a_fleet_without_one_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["--shards", "2", "--out", str(tmp_path)]) == 2
    assert "--start-at is required" in capsys.readouterr().err
    assert render.main(["--shards", "0", "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- the shell the pods run (with stand-ins for locust and peakload)


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def pod_env(tmp_path: Path) -> dict[str, str]:
    """PATH with stand-ins: ``locust`` records its environment, ``peakload`` its arguments and exits 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stand_in(bin_dir, "locust", f'env | grep ^PEAKLOAD_ > "{tmp_path}/locust.env"\n')
    _stand_in(bin_dir, "peakload", f'echo "$@" >> "{tmp_path}/peakload.args"\nexit 1\n')
    _stand_in(bin_dir, "python", f'exec "{sys.executable}" "$@"\n')
    profile = tmp_path / "config" / "singles-day-open.yaml"
    profile.parent.mkdir()
    profile.write_text("name: singles-day-open\n", encoding="utf-8")
    return {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "RESULTS_ROOT": str(tmp_path / "results"),
        "PEAKLOAD_RUN_ID": "R1",
        "PEAKLOAD_PROFILE": str(profile),
        "TARGET_URL": "http://shop:8080",
        "WORKERS": "4",
    }


def _soon(seconds: float = 600) -> str:
    return dt.datetime.fromtimestamp(time.time() + seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_master_entrypoint_runs_its_shard_into_its_own_folder(pod_env: dict[str, str], tmp_path: Path) -> None:
    start = _soon()
    args = ["--shard", "1/3", "--start-at", start]
    proc = subprocess.run(["sh", str(K8S / "master-entrypoint.sh"), *args], env=pod_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr  # the gate's exit is the Job's
    shard_dir = tmp_path / "results" / "R1" / "shard-1"
    env = (tmp_path / "locust.env").read_text(encoding="utf-8").split()
    assert "PEAKLOAD_SHARD=1/3" in env and f"PEAKLOAD_START_AT={start}" in env
    assert f"PEAKLOAD_RESULTS_DIR={shard_dir}" in env
    assert (tmp_path / "peakload.args").read_text(encoding="utf-8").split() == ["gate", str(shard_dir)]
    assert (shard_dir / ".master-done").read_text(encoding="utf-8").strip() == "1"
    assert not (shard_dir / "run.json").exists()  # peakload's Locust plugin writes it (with the shard), not the shell


def test_the_master_entrypoint_without_a_shard_is_the_single_master_recipe(pod_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(["sh", str(K8S / "master-entrypoint.sh")], env=pod_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert (tmp_path / "results" / "R1" / ".master-done").exists()
    assert not any(line.startswith("PEAKLOAD_SHARD=") for line in (tmp_path / "locust.env").read_text(encoding="utf-8").split())


# marker: the entrypoint got as far as the shard's folder, so it leaves ".master-done" = 2 and the merge goes on at once
@pytest.mark.parametrize(
    "args, message, marker",
    [
        (["--shard", "3/3", "--start-at", "2026-11-11T00:00:00Z"], "0 <= I < N", False),
        (["--shard", "1-3", "--start-at", "2026-11-11T00:00:00Z"], "expects I/N", False),
        (["--shard", "1/3"], "needs --start-at", False),
        (["--shard", "1/3", "--start-at", "$(PEAKLOAD_START_AT)"], "not expanded", False),
        (["--shards", "3"], "unknown argument", False),
        (["--shard", "1/3", "--start-at", "2020-01-01T00:00:00Z"], "in the past", True),
        (["--shard", "1/3", "--start-at", str(time.time() + 3 * 86400)], "at most 24 h ahead", True),
        (["--shard", "1/3", "--start-at", "tomorrow"], "--start-at: expected an ISO-8601", True),
        (["--shard", "1/3", "--start-at", "2026-11-11T00:00:00"], "--start-at: expected an instant with its zone", True),
    ],
)
def test_the_master_entrypoint_refuses_bad_arguments(
    pod_env: dict[str, str], tmp_path: Path, args: list[str], message: str, marker: bool
) -> None:
    proc = subprocess.run(["sh", str(K8S / "master-entrypoint.sh"), *args], env=pod_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "locust.env").exists()
    done = [p.read_text(encoding="utf-8").strip() for p in (tmp_path / "results").glob("R1/shard-1/.master-done")]
    assert done == (["2"] if marker else [])


def test_the_merge_job_merges_every_shard_and_names_a_missing_one(pod_env: dict[str, str], tmp_path: Path) -> None:
    run = tmp_path / "results" / "R1"
    for i in (0, 2):  # shard 1 never finished
        (run / f"shard-{i}").mkdir(parents=True)
        (run / f"shard-{i}" / ".master-done").write_text("0\n", encoding="utf-8")
    script = render.merge_script(3)
    proc = subprocess.run(["sh", "-c", script], env={**pod_env, "MERGE_WAIT_SECONDS": "0"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1  # peakload merge's exit is the Job's
    assert "shard 1 did not finish" in proc.stderr
    assert (tmp_path / "peakload.args").read_text(encoding="utf-8").split() == [
        "merge",
        *(str(run / f"shard-{i}") for i in range(3)),
        "--out",
        str(run / "merged"),
    ]


# ---------------------------------------------------------------- Helm values (not manifests)


def unknown_chart_keys(values: dict[str, Any]) -> list[str]:
    """The key paths (two levels: the chart's own; deeper ones are free maps) the chart does not document."""
    out = []
    for top, sub in values.items():
        if top not in CHART_VALUE_KEYS:
            out.append(top)
        elif CHART_VALUE_KEYS[top] and isinstance(sub, dict):
            out += [f"{top}.{key}" for key in sub if key not in CHART_VALUE_KEYS[top]]
    return out


def test_the_helm_values_set_only_keys_the_chart_documents() -> None:
    values = yaml.safe_load((K8S / "helm-values-deliveryhero.yaml").read_text(encoding="utf-8"))
    assert isinstance(values, dict) and values
    assert unknown_chart_keys(values) == []
    args = values["master"]["args"]
    assert values["worker"]["replicas"] == int(args[args.index("--expect-workers") + 1])


def test_the_helm_values_check_can_fail() -> None:
    wrong = {"loadtest": {"name": "x", "locustfile": "x.py"}, "workers": {"replicas": 2}, "master": {"environment": {"ANY": "1"}}}
    assert unknown_chart_keys(wrong) == ["loadtest.locustfile", "workers"]
