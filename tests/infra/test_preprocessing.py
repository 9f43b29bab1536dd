"""The Glue preprocessing job: Glue 5.0, security configuration, arguments, packaging, catalog, role.

Assertions run on a plugin-free app built by the same factory as `app.py` (cdk-nag has its own test), one
synth per stage for the whole module.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from recsys import contracts
from stacks.app_factory import build_app, stack_id
from stacks.config import StageConfig
from stacks.pipeline_stack import RecsysPipelineStack
from stacks.preprocessing import ADDITIONAL_PYTHON_MODULES, JOB_SCRIPT, REPO_ROOT, TABLES, build_python_zip

STAGES = ("dev", "prod")
CONSTRAINTS = REPO_ROOT / "requirements" / "constraints.txt"
ASSET_READ = {"s3:GetBucket*", "s3:GetObject*", "s3:List*"}  # what Glue's Code.bind grants on the assets


class Synth:
    def __init__(self, stage: str, outdir: Path) -> None:
        app = build_app(
            context={"stage": stage, "aws:cdk:bundling-stacks": []}, outdir=str(outdir), nag=False
        )
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack, self.outdir = stack, outdir
        self.config = StageConfig.from_context(stage, app.node.try_get_context("stages"))
        self.template = Template.from_stack(stack)
        self.resources: dict[str, Any] = self.template.to_json()["Resources"]
        self.pre = stack.preprocessing

    def id(self, construct: Any) -> str:
        return str(self.stack.resolve(construct.node.default_child.logical_id))

    def props(self, construct: Any) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[self.id(construct)]["Properties"]
        return props

    @property
    def curated(self) -> str:
        return self.id(self.stack.data_lake.curated_bucket)

    def role_statements(self) -> list[dict[str, Any]]:
        role = self.id(self.pre.role)
        return [
            statement
            for resource in self.resources.values()
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _asset_key(location: dict[str, Any]) -> str:
    """The object key of an asset location `s3://<assets bucket>/<hash>.<ext>` (an Fn::Join)."""
    parts = location["Fn::Join"][1]
    assert parts[0] == "s3://"
    assert "cdk-hnb659fds-assets" in parts[1]["Fn::Sub"]
    return str(parts[2]).lstrip("/")


@pytest.fixture(scope="module")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    return {stage: Synth(stage, tmp_path_factory.mktemp(f"cdk.out-{stage}")) for stage in STAGES}


@pytest.fixture(scope="module")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


# --- the job ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_job_is_glue_5_pyspark_with_the_stage_workers_timeout_and_security_configuration(
    synths: dict[str, Synth], stage: str
) -> None:
    synth = synths[stage]
    job = synth.props(synth.pre.job)
    assert job["GlueVersion"] == "5.0"
    assert job["Command"]["Name"] == "glueetl"
    assert job["Command"]["PythonVersion"] == "3"
    assert job["WorkerType"] == synth.config.preprocessing_worker_type
    assert job["NumberOfWorkers"] == synth.config.preprocessing_worker_count
    assert job["Timeout"] == synth.config.preprocessing_timeout_minutes
    assert job["SecurityConfiguration"] == {"Ref": synth.id(synth.pre.security_configuration)}
    assert job["Role"] == {"Fn::GetAtt": [synth.id(synth.pre.role), "Arn"]}


def test_stages_differ_as_cdk_json_says(synths: dict[str, Synth]) -> None:
    dev, prod = synths["dev"].props(synths["dev"].pre.job), synths["prod"].props(synths["prod"].pre.job)
    assert (dev["WorkerType"], dev["NumberOfWorkers"]) == ("G.1X", 2)
    assert prod["NumberOfWorkers"] > dev["NumberOfWorkers"]


def test_default_arguments_name_the_curated_prefixes_with_the_contract_names(dev: Synth) -> None:
    arguments = dev.props(dev.pre.job)["DefaultArguments"]

    def uri(prefix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", ["s3://", {"Ref": dev.curated}, f"/{prefix}"]]}

    assert arguments[f"--{contracts.GLUE_ARG_INPUT_URI}"] == uri("curated/ingest/")
    assert arguments[f"--{contracts.GLUE_ARG_OUTPUT_URI}"] == uri("curated/")
    assert f"--{contracts.GLUE_ARG_RUN_ID}" not in arguments  # chosen per run, at start time
    assert arguments["--enable-continuous-cloudwatch-log"] == "true"


def test_additional_python_modules_are_the_pinned_versions_of_constraints_txt(dev: Synth) -> None:
    modules = dev.props(dev.pre.job)["DefaultArguments"]["--additional-python-modules"].split(",")
    assert modules == list(ADDITIONAL_PYTHON_MODULES)
    pins = set(CONSTRAINTS.read_text(encoding="utf-8").split())
    for module in modules:
        assert module in pins, f"{module} is not the version pinned in {CONSTRAINTS.name}"
    assert {m.split("==")[0] for m in modules} == {"protobuf", "scipy"}


def test_script_is_glue_job_py_as_an_asset(dev: Synth) -> None:
    key = _asset_key(dev.props(dev.pre.job)["Command"]["ScriptLocation"])
    assert key.endswith(".py")
    staged = dev.outdir / f"asset.{key}"
    assert staged.read_bytes() == JOB_SCRIPT.read_bytes()


def test_extra_py_files_is_a_zip_of_the_recsys_and_glue_sources(dev: Synth) -> None:
    key = _asset_key(dev.props(dev.pre.job)["DefaultArguments"]["--extra-py-files"])
    assert key.endswith(".zip")
    with zipfile.ZipFile(dev.outdir / f"asset.{key}") as archive:
        names = archive.namelist()
    expected = sorted(
        p.relative_to(REPO_ROOT).as_posix()
        for package in ("recsys", "glue")
        for p in (REPO_ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert sorted(names) == expected
    assert {"recsys/__init__.py", "recsys/contracts.py", "glue/__init__.py", "glue/pipeline.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or not n.endswith(".py")]


def test_python_zip_is_reproducible(tmp_path: Path) -> None:
    # the same sources give the same bytes, so the asset hash (and the deployed job) changes only with them
    first, second = build_python_zip(tmp_path / "a.zip"), build_python_zip(tmp_path / "b.zip")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]


# --- encryption ------------------------------------------------------------------------------------------


def test_security_configuration_encrypts_s3_logs_and_bookmarks(dev: Synth) -> None:
    key_arn = {"Fn::GetAtt": [dev.id(dev.pre.key), "Arn"]}
    encryption = dev.props(dev.pre.security_configuration)["EncryptionConfiguration"]
    assert encryption == {
        "S3Encryptions": [{"S3EncryptionMode": "SSE-S3"}],
        "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": key_arn},
        "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": key_arn},
    }


def test_key_rotates_and_lets_cloudwatch_logs_use_it_for_this_accounts_log_groups(dev: Synth) -> None:
    key = dev.props(dev.pre.key)
    assert key["EnableKeyRotation"] is True
    (logs,) = [s for s in key["KeyPolicy"]["Statement"] if "Service" in s.get("Principal", {})]
    assert dev.stack.resolve(logs["Principal"]["Service"]) == {
        "Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
    }
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"} <= set(_actions(logs))
    assert not [a for a in _actions(logs) if "*" in a]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]


# --- catalog ---------------------------------------------------------------------------------------------


def test_database_and_one_parquet_table_per_output(dev: Synth) -> None:
    assert dev.props(dev.pre.database)["DatabaseInput"]["Name"] == "recsys_dev"
    dev.template.resource_count_is("AWS::Glue::Table", len(TABLES))
    assert set(dev.pre.tables) == {"interactions", "user_map", "item_map", "popularity"}
    for name, table in dev.pre.tables.items():
        props = dev.props(table)
        assert props["DatabaseName"] == {"Ref": dev.id(dev.pre.database)}
        table_input = props["TableInput"]
        assert table_input["Name"] == name
        assert table_input["TableType"] == "EXTERNAL_TABLE"
        descriptor = table_input["StorageDescriptor"]
        assert descriptor["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert descriptor["Location"] == {"Fn::Join": ["", ["s3://", {"Ref": dev.curated}, "/curated/runs/"]]}
        assert [c["Name"] for c in descriptor["Columns"]] == list(TABLES[name][1])


@pytest.mark.parametrize(
    ("name", "partitions", "suffix"),
    [
        ("interactions", ["run_id", "split"], "/curated/runs/${run_id}/interactions/split=${split}/"),
        ("user_map", ["run_id"], "/curated/runs/${run_id}/user_map/"),
        ("item_map", ["run_id"], "/curated/runs/${run_id}/item_map/"),
        ("popularity", ["run_id"], "/curated/runs/${run_id}/popularity/"),
    ],
)
def test_tables_project_the_run_layout_as_partitions(
    dev: Synth, name: str, partitions: list[str], suffix: str
) -> None:
    table_input = dev.props(dev.pre.tables[name])["TableInput"]
    assert [p["Name"] for p in table_input["PartitionKeys"]] == partitions
    parameters = table_input["Parameters"]
    assert parameters["classification"] == "parquet"
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.run_id.type"] == "injected"
    assert parameters["storage.location.template"] == {
        "Fn::Join": ["", ["s3://", {"Ref": dev.curated}, suffix]]
    }
    if "split" in partitions:
        assert parameters["projection.split.type"] == "enum"
        assert parameters["projection.split.values"] == "train,test"
    # the layout the tables describe is the one the job writes
    folder = suffix.split("${run_id}/")[1].split("split=")[0]
    assert folder in {
        contracts.RUN_INTERACTIONS_DIR,
        contracts.RUN_USER_MAP_DIR,
        contracts.RUN_ITEM_MAP_DIR,
        contracts.RUN_POPULARITY_DIR,
    }


# --- role ------------------------------------------------------------------------------------------------


def test_role_is_assumed_by_glue_and_has_no_managed_policy(dev: Synth) -> None:
    role = dev.props(dev.pre.role)
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "glue.amazonaws.com"}
    assert "ManagedPolicyArns" not in role


def test_role_has_no_wildcard_actions_besides_the_cdk_asset_read(dev: Synth) -> None:
    for statement in dev.role_statements():
        wild = {a for a in _actions(statement) if "*" in a}
        if not wild:
            continue
        assert wild == ASSET_READ, statement
        for resource in _resources(statement):
            assert "cdk-hnb659fds-assets" in str(resource), statement


def test_role_touches_the_curated_bucket_under_the_ingest_and_runs_prefixes_only(dev: Synth) -> None:
    curated_arn = {"Fn::GetAtt": [dev.curated, "Arn"]}
    objects: dict[str, set[str]] = {}
    listing: list[dict[str, Any]] = []
    for statement in dev.role_statements():
        for resource in _resources(statement):
            if resource == curated_arn:
                assert _actions(statement) == ["s3:ListBucket"]
                listing.append(statement["Condition"])
            elif isinstance(resource, dict) and resource.get("Fn::Join", ["", [None]])[1][0] == curated_arn:
                objects[resource["Fn::Join"][1][1]] = set(_actions(statement))
    assert objects == {
        "/curated/ingest/*": {"s3:GetObject"},
        "/curated/runs/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"},
    }
    (condition,) = listing
    prefixes = condition["StringLike"]["s3:prefix"]
    assert all(re.match(r"^curated/(ingest|runs)(/\*)?$", p) for p in prefixes), prefixes
    # nothing else of the pipeline's buckets
    others = [dev.id(b) for b in (dev.stack.data_lake.ingest_bucket, dev.stack.data_lake.artifacts_bucket)]
    assert not [s for s in dev.role_statements() if any(o in str(s) for o in others)]


def test_role_writes_only_glue_job_logs_and_uses_only_its_key(dev: Synth) -> None:
    statements = dev.role_statements()
    (logs,) = [s for s in statements if any(a.startswith("logs:") for a in _actions(s))]
    assert set(_actions(logs)) == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:AssociateKmsKey",
    }
    assert str(dev.stack.resolve(logs["Resource"])).endswith(":log-group:/aws-glue/jobs/*']]}")
    (kms,) = [s for s in statements if any(a.startswith("kms:") for a in _actions(s))]
    assert kms["Resource"] == {"Fn::GetAtt": [dev.id(dev.pre.key), "Arn"]}
    (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in _actions(s)]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Glue"}}


def test_job_name_is_a_stack_output(dev: Synth) -> None:
    outputs = dev.template.to_json()["Outputs"]
    assert outputs["PreprocessingJobName"]["Value"] == {"Ref": dev.id(dev.pre.job)}
    assert outputs["PreprocessingDatabaseName"]["Value"] == {"Ref": dev.id(dev.pre.database)}


def test_stack_is_environment_agnostic(dev: Synth) -> None:
    assert Stack.of(dev.pre).environment == "aws://unknown-account/unknown-region"
