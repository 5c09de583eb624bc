"""push_dashboards against a loopback fake of Grafana's HTTP API (an external service, not ours)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest
from aiohttp import web

from dashboards import (
    DASHBOARD_FILES,
    GrafanaAuthError,
    GrafanaUnreachableError,
    PushError,
    push_dashboards,
)
from dashboards.push import main

TOKEN = "glsa_test-token-5f3a9c"


class FakeGrafana:
    """Folders and dashboards in memory; Bearer-token auth; the subset of the API grafana-client uses."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.calls: list[str] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        self.calls.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        return await handler(request)

    async def get_folder(self, request: web.Request) -> web.Response:
        folder = self.folders.get(request.match_info["uid"])
        if folder is None:
            return web.json_response({"message": "folder not found", "status": "not-found"}, status=404)
        return web.json_response(folder)

    async def create_folder(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["uid"] in self.folders:
            return web.json_response({"message": "a folder with the same uid already exists"}, status=409)
        folder = {"id": len(self.folders) + 1, "uid": body["uid"], "title": body["title"], "version": 1}
        self.folders[body["uid"]] = folder
        return web.json_response(folder)

    async def save_dashboard(self, request: web.Request) -> web.Response:
        body = await request.json()
        dash = body["dashboard"]
        if body.get("folderUid") not in self.folders:
            return web.json_response({"message": "folder not found"}, status=400)
        old = self.dashboards.get(dash["uid"])
        if old is not None and not body.get("overwrite"):
            return web.json_response({"message": "A dashboard with the same uid already exists", "status": "name-exists"}, status=412)
        version = (old["version"] + 1) if old else 1
        self.dashboards[dash["uid"]] = {"dashboard": dash, "folderUid": body["folderUid"], "version": version}
        return web.json_response(
            {
                "id": len(self.dashboards),
                "uid": dash["uid"],
                "status": "success",
                "version": version,
                "url": f"/d/{dash['uid']}/x",
                "slug": "x",
            }
        )

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/folders/{uid}", self.get_folder)
        app.router.add_post("/api/folders", self.create_folder)
        app.router.add_post("/api/dashboards/db", self.save_dashboard)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def grafana():
    with FakeGrafana(TOKEN) as g:
        yield g


@pytest.fixture(scope="module")
def generated(root: Path) -> Path:
    return root / "dashboards" / "generated"


def test_push_creates_the_folder_and_uploads_every_dashboard(grafana: FakeGrafana, generated: Path) -> None:
    push_dashboards(grafana.url, TOKEN, generated)
    assert list(grafana.folders) == ["peakload"] and grafana.folders["peakload"]["title"] == "peakload"
    assert set(grafana.dashboards) == {"peakload-load-test", "peakload-slo", "peakload-platform"}
    for name in DASHBOARD_FILES:
        local = json.loads((generated / name).read_text())
        stored = grafana.dashboards[local["uid"]]
        assert stored["folderUid"] == "peakload"
        assert stored["dashboard"]["panels"] == local["panels"]
        assert stored["dashboard"]["title"] == local["title"]


def test_second_push_is_idempotent(grafana: FakeGrafana, generated: Path) -> None:
    push_dashboards(grafana.url, TOKEN, generated)
    push_dashboards(grafana.url, TOKEN, generated)
    assert list(grafana.folders) == ["peakload"]
    assert grafana.calls.count("POST /api/folders") == 1  # the second push finds the folder
    assert {d["version"] for d in grafana.dashboards.values()} == {2}
    assert len(grafana.dashboards) == len(DASHBOARD_FILES)


def test_wrong_token_is_a_one_line_auth_error_without_the_token(grafana: FakeGrafana, generated: Path, monkeypatch, capsys) -> None:
    wrong = "glsa_wrong-token-77"
    with pytest.raises(GrafanaAuthError) as err:
        push_dashboards(grafana.url, wrong, generated)
    message = str(err.value)
    assert message == f"Grafana at {grafana.url} refused the token (401) while checking folder 'peakload'; check GRAFANA_TOKEN"
    assert wrong not in message and "\n" not in message
    assert not grafana.dashboards

    monkeypatch.setenv("GRAFANA_TOKEN", wrong)
    assert main(["--url", grafana.url, "--dir", str(generated)]) == 1
    out = capsys.readouterr()
    assert out.err.strip() == f"peakload: {message}"
    assert wrong not in out.err + out.out


def test_connection_refused_is_a_one_line_unreachable_error(generated: Path, monkeypatch, capsys) -> None:
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(GrafanaUnreachableError) as err:
        push_dashboards(url, TOKEN, generated, timeout=3)
    assert str(err.value) == f"cannot reach Grafana at {url} while checking folder 'peakload': connection refused or host unreachable"
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert main(["--url", url, "--dir", str(generated)]) == 1
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and TOKEN not in out.err


def test_main_reports_success(grafana: FakeGrafana, generated: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert main(["--url", grafana.url, "--dir", str(generated)]) == 0
    assert capsys.readouterr().out.strip() == f"pushed 3 dashboards to folder 'peakload' at {grafana.url}"
    assert len(grafana.dashboards) == 3


def test_missing_token_or_dashboards_are_refused_before_any_request(grafana: FakeGrafana, tmp_path: Path, generated: Path) -> None:
    with pytest.raises(GrafanaAuthError, match="no Grafana API token: set GRAFANA_TOKEN"):
        push_dashboards(grafana.url, "", generated)
    with pytest.raises(PushError, match=r"no dashboards \(\*\.json\) in"):
        push_dashboards(grafana.url, TOKEN, tmp_path)
    assert grafana.calls == []
