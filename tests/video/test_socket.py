"""The signalling WebSocket's gate, through the ASGI app (Starlette's test client): another site's page and an
anonymous browser are refused with a reason, before anything of a call is sent."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from telesante.config import Settings
from telesante.main import create_app
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("socket")
    env = {"TELESANTE_DATA_DIR": str(data_dir), "TELESANTE_SECRET_KEY": "socket-test-secret-0123456789"}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        check=True,
        capture_output=True,
    )
    settings = Settings(
        data_dir=data_dir, secret_key=env["TELESANTE_SECRET_KEY"], dicom_port=0, jobs_enabled=False
    )
    with TestClient(create_app(settings)) as test_client:  # Host: testserver
        yield test_client


def test_another_origin_is_refused(client):
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(
            f"/video/salles/{uuid.uuid4()}/ws", headers={"origin": "https://evil.example"}
        ) as socket:
            socket.receive_text()
    assert refused.value.code == 4403


def test_an_anonymous_browser_is_told_to_sign_in(client):
    with client.websocket_connect(
        f"/video/salles/{uuid.uuid4()}/ws", headers={"origin": "http://testserver"}
    ) as socket:
        message = json.loads(socket.receive_text())
        assert message["fatal"] is True and "Connectez-vous" in message["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 4403


def test_a_forged_guest_cookie_is_refused(client):
    client.cookies.set("ts_guest", f"{uuid.uuid4()}.secret")
    try:
        with client.websocket_connect(
            f"/video/salles/{uuid.uuid4()}/ws", headers={"origin": "http://testserver"}
        ) as socket:
            message = json.loads(socket.receive_text())
    finally:
        client.cookies.clear()
    assert message["code"] == "interdit" and "Invitation absente" in message["message"]
