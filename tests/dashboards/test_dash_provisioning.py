"""Grafana provisioning files point at what the dashboards expect."""

from __future__ import annotations

from pathlib import Path

import yaml

from dashboards import DASHBOARD_FILES
from dashboards.grafana_kit import DATASOURCE_UID
from dashboards.push import FOLDER_UID


def test_datasource_has_the_uid_every_dashboard_defaults_to(root: Path) -> None:
    doc = yaml.safe_load((root / "dashboards/provisioning/datasources/peakload.yaml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert (ds["uid"], ds["type"], ds["access"]) == (DATASOURCE_UID, "prometheus", "proxy")
    assert ds["url"] == "$PEAKLOAD_PROMETHEUS_URL"
    assert ds["jsonData"]["timeInterval"] == "1s"


def test_dashboard_provider_loads_the_generated_folder_into_the_push_folder(root: Path) -> None:
    text = (root / "dashboards/provisioning/dashboards/peakload.yaml").read_text()
    # Grafana expands $VAR in provisioning files from its environment.
    doc = yaml.safe_load(text.replace("$PEAKLOAD_HOME", str(root)))
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["folderUid"] == FOLDER_UID and provider["folder"] == "peakload"
    folder = Path(provider["options"]["path"])
    assert folder == root / "dashboards" / "generated"
    assert all((folder / name).is_file() for name in DASHBOARD_FILES)
