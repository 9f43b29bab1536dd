"""`recsys serve` end to end: a fresh embedded AWS, a model published into it, the API on a local port,
then `recsys publish` into the same endpoint and `recsys rollback`, seen from the HTTP side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.unit.local_mode.conftest import Local, write_model


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_handler_serves_the_published_model_from_the_embedded_aws(local: Local) -> None:
    status, body = get(f"{local.url}/recommendations/u3?k=2")
    assert (status, body["model_version"], body["source"]) == (200, "v1", "personalized")
    assert [i["item_id"] for i in body["items"]] == ["i03", "i04"]  # type: ignore[index]
    status, body = get(f"{local.url}/similar/i05?k=1")
    assert [i["item_id"] for i in body["items"]] == ["i06"]  # type: ignore[index]
    request = urllib.request.Request(
        f"{local.url}/events",
        data=json.dumps({"user_id": "u3", "item_id": "i03", "event_type": "view"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["accepted"] == 1
    status, body = get(f"{local.url}/recommendations/u3?k=2")
    assert body["source"] == "realtime"
    assert "i03" not in [i["item_id"] for i in body["items"]]


def test_recsys_serve_publish_and_rollback(tmp_path: Path) -> None:
    recsys = [sys.executable, "-m", "recsys.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RECSYS_"))}
    env["RECSYS_SERVING_CACHE_SECONDS"] = "0"  # see each switch at once
    server = subprocess.Popen(
        [*recsys, "serve", "--port", "0", "--run-dir", str(write_model(tmp_path / "v1"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        endpoint, url = _addresses(server)
        assert get(f"{url}/health")[1]["model_version"] == "v1"
        cli_env = {**env, "AWS_ENDPOINT_URL": endpoint, "RECSYS_SERVING_TABLE": "recsys-serving"}
        cli_env |= {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        v2 = str(write_model(tmp_path / "v2", "v2"))
        for command in (["publish", "--run-dir", v2, "--artifacts-bucket", "recsys-artifacts"], ["rollback"]):
            done = subprocess.run(
                [*recsys, *command], env=cli_env, capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, done.stderr
            expected = "v2" if command[0] == "publish" else "v1"
            assert get(f"{url}/health")[1]["model_version"] == expected
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    assert server.returncode == 0


def _addresses(server: subprocess.Popen[str]) -> tuple[str, str]:
    """The embedded AWS endpoint and the API's URL, from what `recsys serve` prints."""
    assert server.stdout is not None
    found: dict[str, str] = {}
    while len(found) < 2:
        line = server.stdout.readline()
        assert line, server.stderr.read() if server.stderr else "recsys serve exited"
        for key in ("embedded AWS: ", "serving on "):
            if line.startswith(key):
                found[key] = line[len(key) :].split()[0]
    return found["embedded AWS: "], found["serving on "]
