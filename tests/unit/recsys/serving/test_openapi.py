"""`recsys openapi`: the OpenAPI 3 document generated from the routes, with the validator's limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.cli import main as cli
from recsys.contracts import MAX_ID_LENGTH, MAX_TOP_K
from recsys.serving.api import OPERATION_DOCS


@pytest.fixture
def document(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    assert cli.main(["openapi"]) == 0
    parsed: dict[str, object] = json.loads(capsys.readouterr().out)
    return parsed


def test_every_route_is_documented(document: dict[str, object]) -> None:
    assert str(document["openapi"]).startswith("3.")
    paths = document["paths"]
    assert isinstance(paths, dict)
    assert {(p, m) for p, ops in paths.items() for m in ops} == {
        ("/recommendations/{user_id}", "get"),
        ("/similar/{item_id}", "get"),
        ("/events", "post"),
        ("/health", "get"),
    }
    assert {(p, m) for p, m in OPERATION_DOCS} <= {(p, m) for p, ops in paths.items() for m in ops}


def test_parameters_carry_the_validator_limits(document: dict[str, object]) -> None:
    operation = document["paths"]["/recommendations/{user_id}"]["get"]  # type: ignore[index]
    params = {p["name"]: p for p in operation["parameters"]}
    assert params["user_id"]["in"] == "path"
    assert params["user_id"]["schema"]["maxLength"] == MAX_ID_LENGTH
    assert params["k"]["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 10}
    responses = operation["responses"]
    assert set(responses) >= {"200", "400", "503"}
    assert "Retry-After" in responses["503"]["headers"]
    item = responses["200"]["content"]["application/json"]["schema"]["properties"]["items"]["items"]
    assert set(item["required"]) == {"item_id", "title", "categories", "score"}


def test_the_document_can_be_written_to_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    out = tmp_path / "openapi.json"
    assert cli.main(["openapi", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["info"]["title"] == "recsys recommendation API"
