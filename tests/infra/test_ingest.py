"""Ingest infrastructure: notifications, queue and DLQ, the two Lambdas, tables, the events stream, grants.

Assertions run on plugin-free apps built by the same factory as `app.py` (cdk-nag and cfn-lint have their
own tests): one synth per stage, plus one with a state machine ARN given, for the whole module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import FileSystem
from aws_cdk.assertions import Template

from recsys import contracts
from recsys.ingest.settings import IngestSettings
from stacks import pipeline_stack
from stacks.app_factory import build_app, stack_id
from stacks.config import StageConfig
from stacks.ingest import (
    FIREHOSE_ERRORS_PREFIX,
    INGEST_BATCH_SIZE,
    POWERTOOLS_LAYER_PARAMETER,
    SDK_FOR_PANDAS_LAYERS,
    Ingest,
)
from stacks.pipeline_stack import RecsysPipelineStack
from stacks.python_function import REPO_ROOT, build_lambda_asset
from tests.infra.template_view import TemplateView

STAGES = ("dev", "prod")
STATE_MACHINE_ARN = "arn:aws:states:eu-west-1:111122223333:stateMachine:recsys-pipeline"


class Synth(TemplateView):
    def __init__(self, stage: str, outdir: Path) -> None:
        app = build_app(
            context={"stage": stage, "aws:cdk:bundling-stacks": []}, outdir=str(outdir), nag=False
        )
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack, self.outdir = stack, outdir
        self.config = StageConfig.from_context(stage, app.node.try_get_context("stages"))
        self.template = Template.from_stack(stack)
        self.json: dict[str, Any] = dict(self.template.to_json())
        self.resources: dict[str, Any] = self.json["Resources"]
        self.ingest = stack.ingest
        self.lake = stack.data_lake

    def objects(self, bucket: Any, prefix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [self.arn(bucket), f"/{prefix}*"]]}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _synth_with_state_machine(outdir: Path) -> Synth:
    """The stack as the orchestration issue will build it: the ingest construct given a state machine ARN."""

    def ingest_with_arn(*args: Any, **kwargs: Any) -> Ingest:
        return Ingest(*args, **{**kwargs, "state_machine_arn": STATE_MACHINE_ARN})

    patch = pytest.MonkeyPatch()
    patch.setattr(pipeline_stack, "Ingest", ingest_with_arn)
    try:
        return Synth("dev", outdir)
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    return {stage: Synth(stage, tmp_path_factory.mktemp(f"cdk.out-{stage}")) for stage in STAGES}


@pytest.fixture(scope="module")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


@pytest.fixture(scope="module")
def with_state_machine(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synth_with_state_machine(tmp_path_factory.mktemp("cdk.out-sfn"))


# --- notifications and queues ----------------------------------------------------------------------------


def test_uploads_under_catalog_and_transactions_notify_the_queue(dev: Synth) -> None:
    (notifications,) = dev.of_type("Custom::S3BucketNotifications").values()
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": dev.id(dev.lake.ingest_bucket)}
    configs = props["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = []
    for config in configs:
        assert config["Events"] == ["s3:ObjectCreated:*"]
        assert config["QueueArn"] == dev.arn(dev.ingest.queue)
        (rule,) = config["Filter"]["Key"]["FilterRules"]
        assert rule["Name"] == "prefix"
        prefixes.append(rule["Value"])
    assert sorted(prefixes) == sorted([contracts.CATALOG_PREFIX, contracts.TRANSACTIONS_PREFIX])
    assert "LambdaFunctionConfigurations" not in props["NotificationConfiguration"]
    # Firehose's deliveries are inside transactions/, so they are ingested like uploads
    assert contracts.EVENTS_STREAM_PREFIX.startswith(contracts.TRANSACTIONS_PREFIX)


def test_queue_accepts_messages_from_the_ingest_bucket_only(dev: Synth) -> None:
    policy = next(
        p["Properties"]
        for p in dev.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": dev.id(dev.ingest.queue)} in p["Properties"]["Queues"]
    )
    (s3_send,) = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    assert s3_send["Effect"] == "Allow"
    assert "sqs:SendMessage" in _list(s3_send["Action"])
    assert s3_send["Condition"]["ArnLike"]["aws:SourceArn"] == dev.arn(dev.lake.ingest_bucket)


@pytest.mark.parametrize("stage", STAGES)
def test_queue_and_dlq_are_encrypted_redrive_after_a_few_receives_and_outwait_the_function(
    synths: dict[str, Synth], stage: str
) -> None:
    synth = synths[stage]
    queue, dlq = synth.props(synth.ingest.queue), synth.props(synth.ingest.dead_letter_queue)
    for props in (queue, dlq):
        assert props["SqsManagedSseEnabled"] is True  # S3 can send to it without a key policy
        assert "KmsMasterKeyId" not in props
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == synth.arn(synth.ingest.dead_letter_queue)
    assert 3 <= redrive["maxReceiveCount"] <= 5
    assert "RedrivePolicy" not in dlq
    timeout = synth.config.ingest_timeout_seconds
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert synth.props(synth.ingest.ingest_function)["Timeout"] == timeout
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"]  # a standard DLQ keeps the age


def test_both_queues_deny_requests_without_tls(dev: Synth) -> None:
    for queue in (dev.ingest.queue, dev.ingest.dead_letter_queue):
        (policy,) = [
            p["Properties"]["PolicyDocument"]
            for p in dev.of_type("AWS::SQS::QueuePolicy").values()
            if {"Ref": dev.id(queue)} in p["Properties"]["Queues"]
        ]
        (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Action"] == "sqs:*"
        assert deny["Principal"] == {"AWS": "*"}


# --- functions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_functions_take_memory_timeout_concurrency_and_log_retention_from_the_stage(
    synths: dict[str, Synth], stage: str
) -> None:
    synth, config = synths[stage], synths[stage].config
    ingest, events = synth.props(synth.ingest.ingest_function), synth.props(synth.ingest.events_function)
    assert (ingest["MemorySize"], ingest["Timeout"], ingest["ReservedConcurrentExecutions"]) == (
        config.ingest_memory_mb,
        config.ingest_timeout_seconds,
        config.ingest_reserved_concurrency,
    )
    assert (events["MemorySize"], events["Timeout"], events["ReservedConcurrentExecutions"]) == (
        config.events_memory_mb,
        config.events_timeout_seconds,
        config.events_reserved_concurrency,
    )
    groups = synth.of_type("AWS::Logs::LogGroup")
    for function in (ingest, events):
        group = groups[function["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == config.lambda_log_retention_days
    firehose_logs = groups[synth.id(synth.ingest.events_stream_log_group)]
    assert firehose_logs["Properties"]["RetentionInDays"] == config.lambda_log_retention_days


def test_stages_differ_as_cdk_json_says(synths: dict[str, Synth]) -> None:
    dev, prod = (synths[s].props(synths[s].ingest.ingest_function) for s in STAGES)
    assert dev["Timeout"] < prod["Timeout"] == 900
    assert dev["ReservedConcurrentExecutions"] < prod["ReservedConcurrentExecutions"]


def test_functions_are_python_3_11_on_x86_64_with_their_handlers(dev: Synth) -> None:
    for function, name in ((dev.ingest.ingest_function, "ingest"), (dev.ingest.events_function, "events")):
        props = dev.props(function)
        assert props["Runtime"] == "python3.11"
        assert props["Architectures"] == ["x86_64"]  # the SDK for pandas layer's pyarrow is this build
        assert props["Handler"] == f"lambdas.{name}.handler.lambda_handler"
        assert (REPO_ROOT / "lambdas" / name / "handler.py").is_file()


def _env(synth: Synth, function: Any) -> dict[str, Any]:
    env: dict[str, Any] = synth.props(function)["Environment"]["Variables"]
    return env


def test_ingest_function_environment_names_its_buckets_and_tables(dev: Synth) -> None:
    ingest = dev.ingest
    assert _env(dev, ingest.ingest_function) == {
        contracts.INGEST_BUCKET_ENV: {"Ref": dev.id(dev.lake.ingest_bucket)},
        contracts.CURATED_BUCKET_ENV: {"Ref": dev.id(dev.lake.curated_bucket)},
        contracts.INGEST_MANIFEST_TABLE_ENV: {"Ref": dev.id(ingest.manifest_table)},
        contracts.INGEST_IDEMPOTENCY_TABLE_ENV: {"Ref": dev.id(ingest.idempotency_table)},
        contracts.ITEMS_TABLE_ENV: {"Ref": dev.id(ingest.items_table)},
        contracts.PIPELINE_STATE_TABLE_ENV: {"Ref": dev.id(ingest.pipeline_state_table)},
        contracts.STATE_MACHINE_ARN_ENV: dev.stack.resolve(dev.stack.orchestration.state_machine_arn),
        "POWERTOOLS_SERVICE_NAME": contracts.INGEST_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": contracts.METRICS_NAMESPACE,
    }  # the pipeline state machine, by its ARN built from its name (stacks/orchestration.py)


def test_ingest_settings_parse_the_environment_the_stack_sets(dev: Synth) -> None:
    # every variable IngestSettings requires is set (tokens stand in for names known at deploy time)
    env = {name: f"value-of-{name}" for name in _env(dev, dev.ingest.ingest_function)}
    settings = IngestSettings.from_env(env)
    assert settings.manifest_table == f"value-of-{contracts.INGEST_MANIFEST_TABLE_ENV}"
    assert settings.idempotency_table == f"value-of-{contracts.INGEST_IDEMPOTENCY_TABLE_ENV}"


def test_events_function_environment_names_its_table_and_stream(dev: Synth) -> None:
    assert _env(dev, dev.ingest.events_function) == {
        contracts.RECENT_EVENTS_TABLE_ENV: {"Ref": dev.id(dev.ingest.recent_events_table)},
        contracts.EVENTS_STREAM_ENV: {"Ref": dev.id(dev.ingest.events_stream)},
        "POWERTOOLS_SERVICE_NAME": contracts.EVENTS_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": contracts.METRICS_NAMESPACE,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_sqs_event_source_reports_item_failures_in_small_batches_within_the_reservation(
    synths: dict[str, Synth], stage: str
) -> None:
    synth = synths[stage]
    (mapping,) = [m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()]
    assert mapping["EventSourceArn"] == synth.arn(synth.ingest.queue)
    assert mapping["FunctionName"] == {"Ref": synth.id(synth.ingest.ingest_function)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == INGEST_BATCH_SIZE <= 10
    # the poller never invokes more copies than are reserved, so no message is throttled towards the DLQ
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == synth.config.ingest_reserved_concurrency


def test_powertools_layer_comes_from_the_public_ssm_parameter_at_deploy_time(dev: Synth) -> None:
    assert POWERTOOLS_LAYER_PARAMETER == "/aws/service/powertools/python/x86_64/python3.11/latest"
    for function in (dev.ingest.ingest_function, dev.ingest.events_function):
        powertools = dev.props(function)["Layers"][0]
        parameter = dev.json["Parameters"][powertools["Ref"]]
        assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert parameter["Default"] == POWERTOOLS_LAYER_PARAMETER


def test_sdk_for_pandas_layer_is_the_regions_python_3_11_x86_64_build(dev: Synth) -> None:
    ingest_layers = dev.props(dev.ingest.ingest_function)["Layers"]
    assert len(ingest_layers) == 2
    mapping_id, region, key = ingest_layers[1]["Fn::FindInMap"]
    assert region == {"Ref": "AWS::Region"}
    mapping = dev.json["Mappings"][mapping_id]
    assert {r: v[key] for r, v in mapping.items()} == dict(SDK_FOR_PANDAS_LAYERS)
    for region_name, arn in SDK_FOR_PANDAS_LAYERS.items():
        partition = "aws-cn" if region_name.startswith("cn-") else "aws"
        assert arn.startswith(f"arn:{partition}:lambda:{region_name}:")
        assert ":layer:AWSSDKPandas-Python311:" in arn  # x86_64 (the arm64 build is "-Arm64")
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(SDK_FOR_PANDAS_LAYERS)
    # the events function needs no pyarrow
    assert len(dev.props(dev.ingest.events_function)["Layers"]) == 1


# --- packaging -------------------------------------------------------------------------------------------


def _asset_dir(synth: Synth, function: Any) -> Path:
    key = synth.props(function)["Code"]["S3Key"]
    assert key.endswith(".zip")
    return synth.outdir / f"asset.{key.removesuffix('.zip')}"


def _python_files(root: Path, *folders: str) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for folder in folders
        for p in (root / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    }


@pytest.mark.parametrize(("name", "other"), [("ingest", "events"), ("events", "ingest")])
def test_asset_holds_the_handler_package_and_recsys_sources_only(dev: Synth, name: str, other: str) -> None:
    function = getattr(dev.ingest, f"{name}_function")
    asset = _asset_dir(dev, function)
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    assert files == {"lambdas/__init__.py"} | _python_files(REPO_ROOT, f"lambdas/{name}", "recsys")
    assert f"lambdas/{name}/handler.py" in files
    assert "recsys/contracts.py" in files
    assert not [f for f in files if f.startswith(f"lambdas/{other}/")]
    for relative in ("recsys/contracts.py", f"lambdas/{name}/handler.py"):
        assert (asset / relative).read_bytes() == (REPO_ROOT / relative).read_bytes()


def test_asset_hash_depends_on_the_sources_only(dev: Synth, tmp_path: Path) -> None:
    # the deployed key is the fingerprint of the folder's files (paths and bytes; not times, not its place)
    deployed = dev.props(dev.ingest.ingest_function)["Code"]["S3Key"].removesuffix(".zip")
    assert FileSystem.fingerprint(str(_asset_dir(dev, dev.ingest.ingest_function))) == deployed
    # the same sources written twice, to different folders, give the same fingerprint
    first = build_lambda_asset(tmp_path / "a", "ingest")
    second = build_lambda_asset(tmp_path / "b" / "elsewhere", "ingest")
    assert FileSystem.fingerprint(str(first)) == FileSystem.fingerprint(str(second))
    # and a changed source changes it
    (second / "recsys" / "contracts.py").write_bytes(b"# changed\n")
    assert FileSystem.fingerprint(str(first)) != FileSystem.fingerprint(str(second))


def test_missing_handler_fails_synth_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "lambdas" / "ghost").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"lambdas/ghost/handler\.py: the ghost Lambda's handler"):
        build_lambda_asset(tmp_path / "out", "ghost", root=tmp_path)


def test_asset_skips_bytecode(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for relative in ("lambdas/__init__.py", "lambdas/x/handler.py", "recsys/__init__.py"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("# source\n")
    (root / "recsys" / "__pycache__").mkdir()
    (root / "recsys" / "__pycache__" / "cached.py").write_text("# not a source\n")
    (root / "recsys" / "data.csv").write_text("a,b\n")
    out = build_lambda_asset(tmp_path / "out", "x", root=root)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["lambdas/__init__.py", "lambdas/x/handler.py", "recsys/__init__.py"]


# --- tables ----------------------------------------------------------------------------------------------

TABLES = {
    "manifest_table": (contracts.MANIFEST_PARTITION_KEY, contracts.MANIFEST_SORT_KEY, None),
    "idempotency_table": (contracts.IDEMPOTENCY_PARTITION_KEY, None, contracts.IDEMPOTENCY_TTL_ATTRIBUTE),
    "items_table": (contracts.ITEMS_PARTITION_KEY, None, None),
    "recent_events_table": (
        contracts.RECENT_EVENTS_PARTITION_KEY,
        contracts.RECENT_EVENTS_SORT_KEY,
        contracts.RECENT_EVENTS_TTL_ATTRIBUTE,
    ),
    "pipeline_state_table": (contracts.PIPELINE_STATE_PARTITION_KEY, None, None),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_have_the_contract_keys_ttl_pitr_encryption_and_on_demand_billing(
    dev: Synth, name: str
) -> None:
    partition, sort, ttl = TABLES[name]
    props = dev.props(getattr(dev.ingest, name))
    expected_keys = [{"AttributeName": partition, "KeyType": "HASH"}]
    if sort:
        expected_keys.append({"AttributeName": sort, "KeyType": "RANGE"})
    assert props["KeySchema"] == expected_keys
    assert all(a["AttributeType"] == "S" for a in props["AttributeDefinitions"])
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}  # the AWS-managed key, aws/dynamodb
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    if ttl:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    ingest_tables = [k for k in dev.of_type("AWS::DynamoDB::Table") if k.startswith("Ingest")]
    assert len(ingest_tables) == len(TABLES)  # the serving table is stacks/serving.py's


@pytest.mark.parametrize(
    ("stage", "policy", "protected"), [("dev", "Delete", False), ("prod", "Retain", True)]
)
def test_tables_follow_the_stage_removal_policy(
    synths: dict[str, Synth], stage: str, policy: str, protected: bool
) -> None:
    synth = synths[stage]
    for name in TABLES:
        table = synth.resources[synth.id(getattr(synth.ingest, name))]
        assert table["DeletionPolicy"] == policy
        assert table["Properties"].get("DeletionProtectionEnabled", False) is protected


# --- events stream ---------------------------------------------------------------------------------------


def test_events_stream_delivers_plain_csv_to_a_dated_path_under_transactions_stream(dev: Synth) -> None:
    props = dev.props(dev.ingest.events_stream)
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    destination = props["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == dev.arn(dev.lake.ingest_bucket)
    assert destination["RoleARN"] == dev.arn(dev.ingest.events_stream_role)
    assert destination["Prefix"].startswith(contracts.EVENTS_STREAM_PREFIX)
    assert "!{timestamp:yyyy/MM/dd}" in destination["Prefix"]
    errors = destination["ErrorOutputPrefix"]
    assert errors.startswith(FIREHOSE_ERRORS_PREFIX)
    assert "!{firehose:error-output-type}" in errors
    for upload_prefix in (contracts.CATALOG_PREFIX, contracts.TRANSACTIONS_PREFIX):
        assert not errors.startswith(upload_prefix)  # failed records are never ingested
    assert destination["CompressionFormat"] == "UNCOMPRESSED"  # the ingest Lambda reads plain CSV
    assert destination["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 5}
    logging = destination["CloudWatchLoggingOptions"]
    assert logging["Enabled"] is True
    assert logging["LogGroupName"] == {"Ref": dev.id(dev.ingest.events_stream_log_group)}


def test_events_stream_is_created_after_its_role_can_write(dev: Synth) -> None:
    depends_on = dev.resources[dev.id(dev.ingest.events_stream)]["DependsOn"]
    role_policy = next(
        k
        for k, p in dev.of_type("AWS::IAM::Policy").items()
        if {"Ref": dev.id(dev.ingest.events_stream_role)} in p["Properties"]["Roles"]
    )
    assert role_policy in depends_on


def test_events_stream_role_is_assumed_by_firehose_of_this_account(dev: Synth) -> None:
    (statement,) = dev.props(dev.ingest.events_stream_role)["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}


# --- permissions -----------------------------------------------------------------------------------------


def _roles(synth: Synth) -> list[Any]:
    ingest = synth.ingest
    return [ingest.ingest_function.role, ingest.events_function.role, ingest.events_stream_role]


def test_no_ingest_role_has_a_wildcard_action_or_a_managed_policy(with_state_machine: Synth) -> None:
    synth = with_state_machine
    for role in _roles(synth):
        statements = synth.role_statements(role)
        assert statements
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert not [a for a in _list(statement["Action"]) if "*" in a], statement
            assert "*" not in _list(statement["Resource"]), statement
        assert "ManagedPolicyArns" not in synth.props(role)


def _s3_grants(synth: Synth, role: Any) -> dict[str, set[str]]:
    """Actions per S3 resource ("<bucket>" or "<bucket>/<prefix>*"), for the pipeline's buckets."""
    lake = synth.lake
    names = {
        synth.id(b): n for b, n in ((lake.ingest_bucket, "ingest"), (lake.curated_bucket, "curated"))
    } | {synth.id(lake.artifacts_bucket): "artifacts", synth.id(lake.access_log_bucket): "logs"}
    grants: dict[str, set[str]] = {}
    for statement in synth.role_statements(role):
        for resource in _list(statement["Resource"]):
            if isinstance(resource, dict) and "Fn::Join" in resource:
                parts = resource["Fn::Join"][1]
                if isinstance(parts[0], dict) and parts[0].get("Fn::GetAtt", [None])[0] in names:
                    key = names[parts[0]["Fn::GetAtt"][0]] + parts[1]
                else:
                    continue
            elif isinstance(resource, dict) and resource.get("Fn::GetAtt", [None])[0] in names:
                key = names[resource["Fn::GetAtt"][0]]
            else:
                continue
            grants.setdefault(key, set()).update(_list(statement["Action"]))
    return grants


def test_ingest_role_reads_uploads_and_writes_quarantine_and_curated_ingest_only(dev: Synth) -> None:
    read = {"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"}
    assert _s3_grants(dev, dev.ingest.ingest_function.role) == {
        f"ingest/{contracts.CATALOG_PREFIX}*": read,
        f"ingest/{contracts.TRANSACTIONS_PREFIX}*": read,
        "ingest": {"s3:ListBucket"},  # a deleted object reads as 404 (SKIPPED), not 403 (retried)
        f"ingest/{contracts.QUARANTINE_PREFIX}*": {
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:AbortMultipartUpload",
        },
        f"curated/{contracts.INGEST_CURATED_PREFIX}*": {"s3:PutObject", "s3:AbortMultipartUpload"},
    }


def _dynamodb_grants(synth: Synth, role: Any) -> dict[str, set[str]]:
    ingest = synth.ingest
    tables = {synth.id(getattr(ingest, name)): name for name in TABLES}
    grants: dict[str, set[str]] = {}
    for statement in synth.role_statements(role):
        actions = {a for a in _list(statement["Action"]) if a.startswith("dynamodb:")}
        if not actions:
            continue
        for resource in _list(statement["Resource"]):
            grants.setdefault(tables[resource["Fn::GetAtt"][0]], set()).update(actions)
    return grants


def test_ingest_role_uses_its_tables_only(dev: Synth) -> None:
    assert _dynamodb_grants(dev, dev.ingest.ingest_function.role) == {
        "manifest_table": {"dynamodb:PutItem"},
        "idempotency_table": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
        "items_table": {"dynamodb:BatchWriteItem"},
        "pipeline_state_table": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    }


def test_ingest_role_consumes_its_queue(dev: Synth) -> None:
    sqs = [
        s for s in dev.role_statements(dev.ingest.ingest_function.role) if s["Action"][0].startswith("sqs:")
    ]
    (statement,) = sqs
    assert statement["Resource"] == dev.arn(dev.ingest.queue)
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= set(
        statement["Action"]
    )


def test_in_the_stack_the_ingest_function_may_start_the_pipeline_only(dev: Synth) -> None:
    # The composition stack passes the pipeline state machine's ARN (built from its name: no cycle).
    arn = dev.stack.resolve(dev.stack.orchestration.state_machine_arn)
    ingest_role, *others = _roles(dev)
    statements = dev.role_statements(ingest_role)
    (start,) = [s for s in statements if any(a.startswith("states:") for a in _list(s["Action"]))]
    assert (start["Action"], start["Resource"]) == ("states:StartExecution", arn)
    for role in others:
        assert not [
            s for s in dev.role_statements(role) if any(a.startswith("states:") for a in _list(s["Action"]))
        ]


def test_with_a_state_machine_the_ingest_function_may_start_that_one_only(with_state_machine: Synth) -> None:
    synth = with_state_machine
    statements = synth.role_statements(synth.ingest.ingest_function.role)
    (start,) = [s for s in statements if any(a.startswith("states:") for a in _list(s["Action"]))]
    assert start["Action"] == "states:StartExecution"
    assert start["Resource"] == STATE_MACHINE_ARN
    assert _env(synth, synth.ingest.ingest_function)[contracts.STATE_MACHINE_ARN_ENV] == STATE_MACHINE_ARN
    for role in _roles(synth)[1:]:
        assert not [s for s in synth.role_statements(role) if "states:StartExecution" in _list(s["Action"])]


def test_events_role_writes_recent_events_and_puts_records_on_its_stream_only(dev: Synth) -> None:
    role = dev.ingest.events_function.role
    assert _dynamodb_grants(dev, role) == {
        "recent_events_table": {"dynamodb:BatchWriteItem", "dynamodb:PutItem"}
    }
    assert _s3_grants(dev, role) == {}
    (put,) = [
        s for s in dev.role_statements(role) if any(a.startswith("firehose:") for a in _list(s["Action"]))
    ]
    assert put["Action"] == "firehose:PutRecordBatch"
    assert put["Resource"] == dev.arn(dev.ingest.events_stream)


def test_events_stream_role_writes_its_two_prefixes_only(dev: Synth) -> None:
    write = {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    assert _s3_grants(dev, dev.ingest.events_stream_role) == {
        "ingest": {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"},
        f"ingest/{contracts.EVENTS_STREAM_PREFIX}*": write,
        f"ingest/{FIREHOSE_ERRORS_PREFIX}*": write,
    }
    (logs,) = [
        s for s in dev.role_statements(dev.ingest.events_stream_role) if s["Action"] == "logs:PutLogEvents"
    ]
    assert ":log-stream:" in str(logs["Resource"])


def test_lambda_roles_write_their_own_log_group_only(dev: Synth) -> None:
    for function in (dev.ingest.ingest_function, dev.ingest.events_function):
        group = dev.props(function)["LoggingConfig"]["LogGroup"]["Ref"]
        (logs,) = [
            s for s in dev.role_statements(function.role) if any(a.startswith("logs:") for a in s["Action"])
        ]
        assert set(logs["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
        assert logs["Resource"] == {"Fn::GetAtt": [group, "Arn"]}


# --- metrics and outputs ---------------------------------------------------------------------------------


def test_dlq_depth_and_quarantine_metrics_are_exposed_for_alarms(dev: Synth) -> None:
    ingest = dev.ingest
    depth = ingest.dead_letter_queue_depth_metric
    assert (depth.namespace, depth.metric_name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert depth.dimensions is not None
    assert dev.stack.resolve(depth.dimensions["QueueName"]) == {
        "Fn::GetAtt": [dev.id(ingest.dead_letter_queue), "QueueName"]
    }
    for metric, name in (
        (ingest.rows_quarantined_metric, contracts.INGEST_ROWS_QUARANTINED_METRIC),
        (ingest.files_rejected_metric, contracts.INGEST_FILES_REJECTED_METRIC),
    ):
        assert (metric.namespace, metric.metric_name, metric.statistic) == ("RecsysPipeline", name, "Sum")
        assert metric.dimensions == {"service": contracts.INGEST_SERVICE_NAME}
    assert _env(dev, ingest.ingest_function)["POWERTOOLS_METRICS_NAMESPACE"] == contracts.METRICS_NAMESPACE
    alarm = dev.stack.monitoring.alarms["DeadLetterQueue"]  # stacks/monitoring.py alarms on the depth
    assert dev.props(alarm)["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_outputs_name_the_events_function_and_the_queues(dev: Synth) -> None:
    outputs = dev.json["Outputs"]
    assert outputs["EventsFunctionName"]["Value"] == {"Ref": dev.id(dev.ingest.events_function)}
    assert outputs["IngestQueueUrl"]["Value"] == {"Ref": dev.id(dev.ingest.queue)}
    assert outputs["IngestDeadLetterQueueUrl"]["Value"] == {"Ref": dev.id(dev.ingest.dead_letter_queue)}
    assert outputs["EventsStreamName"]["Value"] == {"Ref": dev.id(dev.ingest.events_stream)}


def test_outputs_name_the_pipeline_state_table_and_the_state_machine(dev: Synth) -> None:
    """What `recsys pipeline run --state-table ... --state-machine-arn ...` needs (README, "Operations")."""
    outputs = dev.json["Outputs"]
    assert outputs["PipelineStateTableName"]["Value"] == {"Ref": dev.id(dev.ingest.pipeline_state_table)}
    machine = dev.stack.orchestration.state_machine
    assert outputs["StateMachineArn"]["Value"] == {"Ref": dev.id(machine)}
