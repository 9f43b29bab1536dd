"""The Batch job end to end on moto S3 and the CPU: inputs → DSSTNE steps → published outputs, or nothing."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from recsys import contracts
from training.dsstne import job
from training.dsstne.job import final_error, main
from training.dsstne.job_settings import JobError, S3Location, parse_s3_uri, settings_from_env

CURATED, ARTIFACTS, RUN = "curated-bucket", "artifacts-bucket", "run-1"
INPUT_PREFIX = f"{contracts.DSSTNE_PREFIX}{RUN}/"
ENV = {
    contracts.DSSTNE_RUN_ID_ENV: RUN,
    contracts.CURATED_BUCKET_ENV: CURATED,
    contracts.ARTIFACTS_BUCKET_ENV: ARTIFACTS,
    contracts.DSSTNE_EPOCHS_ENV: "2",
    contracts.DSSTNE_BATCH_ENV: "8",
    contracts.DSSTNE_TOP_K_ENV: "3",
}
TINY_NETWORK = {
    "Version": 0.7,
    "Kind": "FeedForward",
    "ShuffleIndices": False,
    "ScaledMarginalCrossEntropy": {"oneTarget": 1.0, "zeroTarget": 0.0, "oneScale": 1.0, "zeroScale": 1.0},
    "Layers": [
        {"Name": "Input", "Kind": "Input", "N": "auto", "DataSet": "tiny_input", "Sparse": True},
        {"Name": "Hidden", "Kind": "Hidden", "Type": "FullyConnected", "N": 8, "Activation": "Sigmoid"},
        {"Name": "Output", "Kind": "Output", "Type": "FullyConnected", "DataSet": "tiny_output", "N": "auto"},
    ],
    "ErrorFunction": "ScaledMarginalCrossEntropy",
}
PUBLISHED = {
    contracts.DSSTNE_NETWORK_FILE,
    contracts.DSSTNE_INPUT_INDEX_FILE,
    contracts.DSSTNE_OUTPUT_INDEX_FILE,
    contracts.DSSTNE_SAMPLE_INDEX_FILE,
    contracts.DSSTNE_RECS_FILE,
    contracts.DSSTNE_METRICS_FILE,
    contracts.DSSTNE_SUCCESS_FILE,
}


def histories(users: int = 24, items: int = 30, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {f"u{u}": [f"i{i}" for i in rng.sample(range(items), 5)] for u in range(users)}


def dsstne_text(history: dict[str, list[str]]) -> str:
    """DSSTNE's text format, with timestamps as values as in its MovieLens sample."""
    return "".join(
        f"{user}\t{':'.join(f'{item},1700000000' for item in items)}\n" for user, items in history.items()
    )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (CURATED, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        yield client


def put(s3: Any, name: str, body: str) -> None:
    s3.put_object(Bucket=CURATED, Key=INPUT_PREFIX + name, Body=body.encode())


def published(s3: Any) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=ARTIFACTS).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=ARTIFACTS, Key=o["Key"])["Body"].read() for o in listing}


def outputs(s3: Any) -> dict[str, bytes]:
    """The run's published files by name; asserts nothing was written outside its prefix."""
    objects = published(s3)
    assert all(key.startswith(INPUT_PREFIX) for key in objects)
    return {key.removeprefix(INPUT_PREFIX): body for key, body in objects.items()}


@pytest.mark.parametrize("layout", ["interactions", "input-output"])
def test_a_tiny_run_publishes_network_indexes_recs_and_metrics(s3: Any, layout: str) -> None:
    # GIVEN a run prefix with a tiny network config and the users' histories
    history = histories()
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps(TINY_NETWORK))
    if layout == "interactions":
        put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(history))
    else:
        put(s3, contracts.DSSTNE_INPUT_FILE, dsstne_text(history))
        put(s3, contracts.DSSTNE_OUTPUT_FILE, dsstne_text(history))

    # WHEN the job runs
    assert main([], env=ENV, s3=s3) == 0

    # THEN every output is under the run's output prefix, _SUCCESS included
    files = outputs(s3)
    model = {name for name in files if name.startswith(contracts.DSSTNE_MODEL_DIR)}
    assert set(files) - model == PUBLISHED
    assert {name.removeprefix(contracts.DSSTNE_MODEL_DIR).split("/")[0] for name in model} == {
        contracts.MODEL_INFO_FILE,
        contracts.MODEL_POPULARITY_FILE,
        contracts.MODEL_RECS_DIR.rstrip("/"),
    }
    assert files[contracts.DSSTNE_SUCCESS_FILE] == b""
    metrics = json.loads(files[contracts.DSSTNE_METRICS_FILE])
    assert (metrics["run_id"], metrics["epochs"], metrics["batch"], metrics["top_k"]) == (RUN, 2, 8, 3)
    assert metrics["final_error"] > 0
    assert metrics["datasets"] == {"input": "tiny_input", "output": "tiny_output"}
    assert set(metrics["seconds"]) == {"download", "generate", "train", "predict", "export", "total"}
    assert metrics["model_version"] == "dsstne-run-1"
    catalog = {item for items in history.values() for item in items}
    assert metrics["exported"] == {"users": len(history), "items": len(catalog), "k": 3}
    assert files[contracts.DSSTNE_NETWORK_FILE].startswith(b"\x89HDF")  # NetCDF-4
    # one line per user, k items each, none of them already in the user's history
    lines = files[contracts.DSSTNE_RECS_FILE].decode().splitlines()
    assert [line.split("\t")[0] for line in lines] == list(history)
    for line in lines:
        user, entries = line.split("\t")
        items = [entry.split(",")[0] for entry in entries.rstrip(":").split(":")]
        assert len(items) == 3
        assert not set(items) & set(history[user])
    assert len(files[contracts.DSSTNE_SAMPLE_INDEX_FILE].decode().splitlines()) == len(history)


def test_missing_inputs_fail_and_publish_nothing(s3: Any, caplog: pytest.LogCaptureFixture) -> None:
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps(TINY_NETWORK))
    assert main([], env=ENV, s3=s3) == 1
    assert published(s3) == {}
    assert "no inputs: expected input.txt" in caplog.text


def test_a_missing_named_config_fails_and_publishes_nothing(
    s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    config_uri = f"s3://{CURATED}/{INPUT_PREFIX}my-network.json"
    assert main([], env={**ENV, contracts.DSSTNE_CONFIG_URI_ENV: config_uri}, s3=s3) == 1
    assert published(s3) == {}
    assert f"{config_uri}: network config not found" in caplog.text


def test_without_a_config_the_built_in_network_trains_with_adam(
    s3: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN only the users' histories (as the preprocessing job writes them: no config.json)
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    calls: list[list[str]] = []
    real = job.dsstne
    monkeypatch.setattr(job, "dsstne", lambda argv: (calls.append(list(argv)), real(argv))[1])
    # WHEN the job runs
    assert main([], env=ENV, s3=s3) == 0
    # THEN the built-in network was trained with the tuned preset's optimizer, and the run says so
    (train,) = [argv for argv in calls if argv[0] == "train"]
    assert train[-6:] == list(job.BUILTIN_TRAIN_FLAGS)
    metrics = json.loads(outputs(s3)[contracts.DSSTNE_METRICS_FILE])
    assert metrics["network"] == "autoencoder.json"
    assert metrics["datasets"] == {"input": "recsys_input", "output": "recsys_output"}
    assert "training the built-in network" in caplog.text


def test_the_precision_setting_reaches_train(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a job definition that asks for bf16 mixed precision
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    calls: list[list[str]] = []
    real = job.dsstne
    monkeypatch.setattr(job, "dsstne", lambda argv: (calls.append(list(argv)), real(argv))[1])
    # WHEN the job runs THEN train got --precision bf16 (fp32, DSSTNE's, when the variable is unset)
    assert main([], env={**ENV, contracts.DSSTNE_PRECISION_ENV: "bf16"}, s3=s3) == 0
    (train,) = [argv for argv in calls if argv[0] == "train"]
    assert train[-2:] == ["--precision", "bf16"]
    assert settings_from_env(ENV).precision == "fp32"


def test_a_failing_step_publishes_nothing(s3: Any, caplog: pytest.LogCaptureFixture) -> None:
    # predict refuses a k above the catalog size, after generate-netcdf and train have run
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps(TINY_NETWORK))
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    assert main([], env={**ENV, contracts.DSSTNE_TOP_K_ENV: "1000"}, s3=s3) == 1
    assert published(s3) == {}
    assert "dsstne predict failed with exit code 1" in caplog.text


def test_an_input_dataset_predict_cannot_name_is_refused_before_any_work(
    s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    layers = [{**TINY_NETWORK["Layers"][0], "DataSet": "users"}, *TINY_NETWORK["Layers"][1:]]
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps({**TINY_NETWORK, "Layers": layers}))
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    assert main([], env=ENV, s3=s3) == 1
    assert "DataSet 'users' must end in '_input'" in caplog.text


class FailingUploads:
    """An S3 client whose third upload fails, as a lost connection would."""

    def __init__(self, s3: Any) -> None:
        self._s3, self.calls = s3, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def upload_file(self, *args: Any) -> None:
        self.calls += 1
        if self.calls == 3:
            raise OSError("connection reset")
        self._s3.upload_file(*args)


def test_a_failed_upload_removes_what_it_published(s3: Any) -> None:
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps(TINY_NETWORK))
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    client = FailingUploads(s3)
    assert main([], env=ENV, s3=client) == 1
    assert client.calls == 3
    assert published(s3) == {}


def test_a_published_run_is_not_redone(s3: Any, caplog: pytest.LogCaptureFixture) -> None:
    # A Batch retry after the upload finished: no inputs needed, nothing rewritten.
    key = f"{INPUT_PREFIX}{contracts.DSSTNE_SUCCESS_FILE}"
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=b"")
    assert main([], env=ENV, s3=s3) == 0
    assert set(published(s3)) == {key}
    assert "already published" in caplog.text


def test_settings_default_to_the_run_prefixes_and_the_dsstne_sample() -> None:
    settings = settings_from_env({k: v for k, v in ENV.items() if "EPOCHS" not in k and "BATCH" not in k})
    assert settings.input == S3Location(CURATED, INPUT_PREFIX)
    assert settings.output == S3Location(ARTIFACTS, INPUT_PREFIX)
    assert settings.config == S3Location(CURATED, INPUT_PREFIX + "config.json")
    assert (settings.epochs, settings.batch, settings.top_k) == (10, 256, 3)


def test_explicit_uris_override_the_buckets() -> None:
    settings = settings_from_env(
        {
            contracts.DSSTNE_RUN_ID_ENV: RUN,
            contracts.DSSTNE_INPUT_URI_ENV: "s3://in-bucket/some/where",
            contracts.DSSTNE_OUTPUT_URI_ENV: "s3://out-bucket/",
            contracts.DSSTNE_CONFIG_URI_ENV: "s3://cfg-bucket/nets/ae.json",
        }
    )
    assert settings.input == S3Location("in-bucket", "some/where/")
    assert settings.output == S3Location("out-bucket", "")
    assert settings.config == S3Location("cfg-bucket", "nets/ae.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({contracts.DSSTNE_RUN_ID_ENV: ""}, "RECSYS_DSSTNE_RUN_ID: expected a run id"),
        ({contracts.DSSTNE_RUN_ID_ENV: "../other"}, "RECSYS_DSSTNE_RUN_ID: expected a run id"),
        ({contracts.DSSTNE_EPOCHS_ENV: "0"}, "RECSYS_DSSTNE_EPOCHS: expected a whole number >= 1, got '0'"),
        ({contracts.DSSTNE_TOP_K_ENV: "ten"}, "RECSYS_DSSTNE_TOP_K: expected a whole number"),
        ({contracts.CURATED_BUCKET_ENV: ""}, "RECSYS_DSSTNE_INPUT_URI or RECSYS_CURATED_BUCKET: one of them"),
        ({contracts.DSSTNE_OUTPUT_URI_ENV: "https://x/y"}, "RECSYS_DSSTNE_OUTPUT_URI: expected s3://bucket/"),
        (
            {contracts.DSSTNE_CONFIG_URI_ENV: "s3://bucket-a/"},
            "RECSYS_DSSTNE_CONFIG_URI: expected s3://bucket/key",
        ),
        ({contracts.DSSTNE_PRECISION_ENV: "fp16"}, "RECSYS_DSSTNE_PRECISION: expected one of fp32, tf32"),
    ],
)
def test_bad_settings_are_named_by_their_variable(change: dict[str, str], message: str) -> None:
    with pytest.raises(JobError, match=message.replace("/", r"\/").replace(".", r"\.")):
        settings_from_env({**ENV, **change})


def test_bad_settings_exit_1_before_touching_s3(caplog: pytest.LogCaptureFixture) -> None:
    assert main([], env={}, s3=object()) == 1
    assert "RECSYS_DSSTNE_RUN_ID: expected a run id" in caplog.text


def test_final_error_is_the_last_epoch_line() -> None:
    log = (
        "NNNetwork::Train: Epoch 1, average error 5.5, average training error 5.4, …\n"
        "NNNetwork::Train: Epoch 2, average error 4.25, average training error 4.2, …\n"
    )
    assert final_error(log) == 4.25
    assert final_error("no epochs") is None


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://my-bucket/a/b", folder=True, what="x") == S3Location("my-bucket", "a/b/")
    assert parse_s3_uri("s3://my-bucket", folder=True, what="x") == S3Location("my-bucket", "")
    assert parse_s3_uri("s3://my-bucket/a/b.json", folder=False, what="x").key == "a/b.json"


@pytest.mark.parametrize("parallel", ["data", "model"])
def test_several_gpus_train_under_torchrun(s3: Any, monkeypatch: pytest.MonkeyPatch, parallel: str) -> None:
    # GIVEN a job that sees two GPUs (faked: the ranks run on the CPU with gloo)
    from training.dsstne import job

    monkeypatch.setattr(job, "gpu_count", lambda: 2)
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps(TINY_NETWORK))
    put(s3, contracts.DSSTNE_INTERACTIONS_FILE, dsstne_text(histories()))
    # WHEN it runs THEN train ran as two ranks and the run was published as usual
    assert main([], env={**ENV, contracts.DSSTNE_PARALLEL_ENV: parallel}, s3=s3) == 0
    files = outputs(s3)
    model = {name for name in files if name.startswith(contracts.DSSTNE_MODEL_DIR)}
    assert set(files) - model == PUBLISHED
    assert {name.removeprefix(contracts.DSSTNE_MODEL_DIR).split("/")[0] for name in model} == {
        contracts.MODEL_INFO_FILE,
        contracts.MODEL_POPULARITY_FILE,
        contracts.MODEL_RECS_DIR.rstrip("/"),
    }
    assert json.loads(files[contracts.DSSTNE_METRICS_FILE])["final_error"] > 0


def test_the_preprocessing_runs_text_parts_are_read_in_order(s3: Any) -> None:
    # GIVEN the layout the Glue job writes: dsstne/input/ and dsstne/output/ folders of Spark text parts
    history = {f"{user}%2Cx": [f"{item}+y" for item in items] for user, items in histories().items()}
    lines = dsstne_text(history).splitlines(keepends=True)
    put(s3, contracts.DSSTNE_CONFIG_FILE, json.dumps(TINY_NETWORK))
    for folder in ("input/", "output/"):
        put(s3, folder + "_SUCCESS", "")
        put(s3, folder + "part-00000-a.txt", "".join(lines[:10]))
        put(s3, folder + "part-00001-b.txt", "".join(lines[10:]).rstrip("\n"))  # no final newline
        put(s3, folder + ".part-00000-a.txt.crc", "junk")

    # WHEN the job runs
    assert main([], env=ENV, s3=s3) == 0

    # THEN every user of every part got recommendations, in the parts' order
    files = outputs(s3)
    recs = files[contracts.DSSTNE_RECS_FILE].decode().splitlines()
    assert [line.split("\t")[0] for line in recs] == list(history)
    # AND the publish-format copy names users and items by their ids (the parts' names are URL-encoded)
    parts = [name for name in files if name.startswith(contracts.DSSTNE_MODEL_DIR + contracts.MODEL_RECS_DIR)]
    assert len(parts) == 1
    table = pq.read_table(io.BytesIO(files[parts[0]]))
    assert table.column(contracts.RECS_USER_COLUMN).to_pylist() == [unquote_plus(u) for u in history]
    for user, items in zip(history, table.column(contracts.RECS_ITEM_IDS_COLUMN).to_pylist(), strict=True):
        assert len(items) == 3
        assert not {unquote_plus(i) for i in history[user]} & set(items)
