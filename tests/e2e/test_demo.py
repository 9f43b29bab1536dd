"""`recsys demo` end to end on a reduced sample, and its faults.

One RECSYS_HOME goes through the whole story, in order: a first run publishes and the served API
answers; the same files again are a no-op; a failing stage and an interruption leave the live model as
it was and the run marked failed with its reason; the next run recovers the owed data (ids stable) and
the gate refuses a corrupted model artifact. Uploading one file twice is checked on its own, without
Spark. Kept small (55 users, few epochs) so the tier stays within CI's budget.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from local_mode import stages
from local_mode.demo import Demo
from local_mode.home import FAILED, NOOP, RUNNING, SUCCEEDED, Home
from recsys import contracts


@contextmanager
def demo_run(home: Path, catalog: list[Path], transactions: list[Path], **options: Any) -> Iterator[Demo]:
    """Run the demo in this process; the embedded AWS stays up inside the block, os.environ is restored."""
    saved = dict(os.environ)
    defaults: dict[str, Any] = {"fm_epochs": 2, "ae_epochs": 2, "autoencoder": False}
    demo = Demo(
        Home(home), stages.Options(catalog, transactions, **{**defaults, **options}), log=lambda _: None
    )
    try:
        yield demo
    finally:
        demo.close()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recsys-home")


@pytest.fixture(scope="module")
def first(spark: object, sample: dict[str, Path], home: Path) -> dict[str, Any]:
    """The first run (autoencoder included) and a GET on the served API, while its embedded AWS is up."""
    from lambdas.recommend import handler
    from local_mode.http import LocalHttpServer
    from recsys.model_eval import read_lists

    with demo_run(home, [sample["catalog"]], [sample["a"]], autoencoder=True) as demo:
        summary = demo.run()
        handler.runtime.cache_clear()
        server = LocalHttpServer(handler.lambda_handler).start()
        try:
            live = Home(home).live()
            assert live is not None
            user = next(iter(read_lists(live["folder"])))
            with urllib.request.urlopen(f"{server.url}/recommendations/{user}?k=5", timeout=30) as reply:
                answer = {"status": reply.status, "body": json.loads(reply.read()), "user": user}
        finally:
            server.stop()
            handler.runtime.cache_clear()
    return {"summary": summary, "answer": answer}


def test_first_run_publishes_reports_and_serves(first: dict[str, Any], home: Path) -> None:
    summary = first["summary"]
    assert summary["status"] == SUCCEEDED, summary
    assert set(summary["models"]) == {"popularity", "fm", "autoencoder"}
    for metrics in summary["models"].values():
        assert 0.0 <= metrics["precision@10"] <= 1.0
        assert metrics["users"] > 0
    live = Home(home).live()
    assert live is not None
    assert summary["model_version"] == live["version"] == summary["published"]
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "report.html").read_text(encoding="utf-8").count("<img") >= 4
    assert {p.name for p in (run_dir / "plots").glob("*.png")} >= {"precision_at_k.png", "coverage.png"}
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == SUCCEEDED
    assert set(record["seconds"]) >= {"ingest", "preprocess", "publish"}

    answer = first["answer"]
    assert answer["status"] == 200
    body = answer["body"]
    assert body["model_version"] == live["version"]
    assert 1 <= len(body["items"]) <= 5


def test_same_files_again_are_a_no_op(first: dict[str, Any], sample: dict[str, Path], home: Path) -> None:
    runs_before = len(list((home / "preprocess" / "runs").iterdir()))
    with demo_run(home, [sample["catalog"]], [sample["a"]]) as demo:
        summary = demo.run()
    assert summary["status"] == NOOP
    assert summary["model_version"] == first["summary"]["model_version"]
    assert len(list((home / "preprocess" / "runs").iterdir())) == runs_before  # nothing preprocessed


def _fail(ctx: stages.Context) -> dict[str, Any]:
    raise RuntimeError("disk on fire")


def _interrupt(ctx: stages.Context) -> dict[str, Any]:
    raise KeyboardInterrupt


def _corrupting_fm(ctx: stages.Context) -> dict[str, Any]:
    result = stages.fm(ctx)
    for part in (ctx.candidates["fm"] / contracts.MODEL_RECS_DIR).glob("*.parquet"):
        part.write_bytes(b"PAR1 this is not a Parquet file")
    return result


def test_failures_keep_the_live_model_and_the_next_run_recovers(
    first: dict[str, Any], sample: dict[str, Path], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = Home(home)
    live_before = state.live()
    files = ([sample["catalog"]], [sample["a"], sample["b"]])  # batch b is new data

    # 1. A stage fails: the run is marked failed with its reason, the live model is untouched.
    monkeypatch.setitem(stages.STAGES, "preprocess", _fail)
    with demo_run(home, *files) as demo:
        failed = demo.run()
    assert failed["status"] == FAILED
    assert "preprocess" in failed["reason"]
    assert "disk on fire" in failed["reason"]
    assert state.live() == live_before
    assert failed["model_version"] == live_before["version"]
    assert state.pending()  # batch b is owed to the next run

    # 2. Interrupted (Ctrl-C): recorded as such, then re-raised.
    monkeypatch.setitem(stages.STAGES, "preprocess", _interrupt)
    with pytest.raises(KeyboardInterrupt), demo_run(home, *files) as demo:
        demo.run()
    interrupted = state.runs()[-1]
    assert interrupted["status"] == FAILED
    assert interrupted["reason"].startswith("interrupted in preprocess")
    # A process killed outright leaves its run marked running; the next demo marks it failed.
    killed = {"run_id": "20000101T000000Z-dead00", "status": RUNNING, "stage": "fm", "stages": {}}
    state.save_run(killed)

    # 3. The next run recovers: batch b is trained, ids of the first run's users do not move. Its FM
    # output is corrupted on disk: the gate rejects it, so the live model stays.
    monkeypatch.setitem(stages.STAGES, "preprocess", stages.preprocess)
    monkeypatch.setitem(stages.STAGES, "fm", _corrupting_fm)
    with demo_run(home, *files) as demo:
        recovered = demo.run()
    assert recovered["status"] == SUCCEEDED, recovered
    assert json.loads((home / "runs" / killed["run_id"] / "run.json").read_text())["status"] == FAILED
    assert not state.pending()
    assert "fm" in recovered["failed_models"]
    assert "unreadable model output" in recovered["failed_models"]["fm"]
    assert "output unusable" in recovered["gate"]
    assert recovered["published"] is None
    assert state.live() == live_before

    maps = {}
    for summary in (first["summary"], recovered):
        root = home / "preprocess" / "runs" / summary["run_id"] / "user_map"
        table = ds.dataset(str(root), format="parquet").to_table(columns=["user_id", "user_idx"]).to_pylist()
        maps[summary["run_id"]] = {row["user_id"]: row["user_idx"] for row in table}
    old, new = maps[first["summary"]["run_id"]], maps[recovered["run_id"]]
    assert len(new) > len(old)
    assert all(new[u] == i for u, i in old.items())


def test_same_upload_twice_is_not_double_counted(
    sample: dict[str, Path], tmp_path: Path, restore_environ: None
) -> None:
    """One S3 event delivered twice (the handler is idempotent); one file given to two runs (the ledger)."""
    from local_mode.aws import clients

    aws, env = stages.start_aws()
    try:
        c = clients(aws.endpoint)
        bucket = env[contracts.INGEST_BUCKET_ENV]
        body = sample["b"].read_bytes()
        put = c.s3.put_object(Bucket=bucket, Key="transactions/b.csv", Body=body)
        event = stages.s3_event(bucket, "transactions/b.csv", put, len(body))
        assert stages.deliver(event) == []
        assert stages.deliver(event) == []
        # moto's state is shared by every embedded AWS of this process: count this upload's objects only
        versions = c.s3.list_object_versions(Bucket=env[contracts.CURATED_BUCKET_ENV]).get("Versions", [])
        assert len([v for v in versions if "/b.csv-" in v["Key"]]) == 1
        assert stages.manifest_item(env, bucket, "transactions/b.csv")["status"] == "ACCEPTED"

        home = Home(tmp_path / "home")
        options = stages.Options([], [sample["b"], sample["b"]])
        result = stages.ingest(stages.Context(home, options, "r1", aws, env, log=lambda _: None))
        assert len(result["new_files"]) == 1
        assert result["already_ingested"] == [sample["b"].name]
        mirrored = sorted(home.curated.rglob("*.parquet"))
        again = stages.ingest(stages.Context(home, options, "r2", aws, env, log=lambda _: None))
        assert again["new_files"] == []
        assert again["already_ingested"] == [sample["b"].name] * 2
        assert len(home.ledger()) == 1
        assert sorted(home.curated.rglob("*.parquet")) == mirrored
    finally:
        aws.stop()
