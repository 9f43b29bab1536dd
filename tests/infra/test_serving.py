"""Serving infrastructure: the serving table, the recommendation and publish Lambdas, the IAM-authenticated
front end (Function URL by default, HTTP API as a stage option), grants, outputs.

Three synths for the module: dev and prod as cdk.json has them (Function URL; prod with provisioned
concurrency, so the URL is on the alias), and dev switched to the HTTP API, synthesized with cdk-nag on
(cdk.json's stages use the Function URL, so test_nag.py does not cover this option).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from recsys import contracts
from recsys.publish.settings import PublishSettings
from recsys.serving.settings import ServingSettings
from stacks.app_factory import build_app, cdk_json_context, stack_id
from stacks.config import SERVING_APIS, ConfigError, StageConfig
from stacks.ingest import POWERTOOLS_LAYER_PARAMETER
from stacks.pipeline_stack import RecsysPipelineStack
from stacks.python_function import REPO_ROOT
from stacks.serving import ACCESS_LOG_FIELDS, API_ROUTES, LIVE_ALIAS
from tests.infra.template_view import TemplateView
from tests.infra.test_nag import synth_findings

HTTP_API_PROVISIONED = 2


class Synth(TemplateView):
    def __init__(self, app: App, stage: str, outdir: Path, template: dict[str, Any] | None = None) -> None:
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack, self.outdir = stack, outdir
        self.config = StageConfig.from_context(stage, app.node.try_get_context("stages"))
        self.template = Template.from_json(template) if template else Template.from_stack(stack)
        self.json: dict[str, Any] = dict(self.template.to_json())
        self.resources: dict[str, Any] = self.json["Resources"]
        self.serving = stack.serving
        self.ingest = stack.ingest
        self.lake = stack.data_lake

    def env(self, function: Any) -> dict[str, Any]:
        env: dict[str, Any] = self.props(function)["Environment"]["Variables"]
        return env


def _stages(**dev_overrides: Any) -> dict[str, Any]:
    stages: dict[str, Any] = copy.deepcopy(cdk_json_context()["stages"])
    stages["dev"].update(dev_overrides)
    return stages


def _context(stage: str, **dev_overrides: Any) -> dict[str, Any]:
    return {"stage": stage, "stages": _stages(**dev_overrides), "aws:cdk:bundling-stacks": []}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    built = {}
    for stage in ("dev", "prod"):
        outdir = tmp_path_factory.mktemp(f"cdk.out-{stage}")
        built[stage] = Synth(build_app(context=_context(stage), outdir=str(outdir), nag=False), stage, outdir)
    return built


@pytest.fixture(scope="module")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


@pytest.fixture(scope="module")
def prod(synths: dict[str, Synth]) -> Synth:
    return synths["prod"]


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """dev with serving_api "http-api" and provisioned concurrency, synthesized as `cdk synth` does."""
    outdir = tmp_path_factory.mktemp("cdk.out-http-api")
    context = _context(
        "dev",
        serving_api=contracts.SERVING_API_HTTP_API,
        recommend_provisioned_concurrency=HTTP_API_PROVISIONED,
    )
    app = build_app(context=context, outdir=str(outdir), nag=True)
    findings = synth_findings(app, outdir)
    assert not findings, "cdk-nag findings with the HTTP API option:\n" + "\n".join(findings)
    template = json.loads((outdir / f"{stack_id('dev')}.template.json").read_text(encoding="utf-8"))
    return Synth(app, "dev", outdir, template)


# --- the serving table -----------------------------------------------------------------------------------


def test_serving_table_is_keyed_by_pk_with_ttl_pitr_encryption_and_on_demand_billing(dev: Synth) -> None:
    props = dev.props(dev.serving.table)
    assert props["KeySchema"] == [{"AttributeName": contracts.SERVING_PARTITION_KEY, "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": contracts.SERVING_PARTITION_KEY, "AttributeType": "S"}
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": contracts.SERVING_TTL_ATTRIBUTE,
        "Enabled": True,
    }


@pytest.mark.parametrize(
    ("stage", "policy", "protected"), [("dev", "Delete", False), ("prod", "Retain", True)]
)
def test_serving_table_follows_the_stage_removal_policy(
    synths: dict[str, Synth], stage: str, policy: str, protected: bool
) -> None:
    synth = synths[stage]
    table = synth.resources[synth.id(synth.serving.table)]
    assert table["DeletionPolicy"] == policy
    assert table["Properties"].get("DeletionProtectionEnabled", False) is protected


# --- front end: Function URL (default) -------------------------------------------------------------------


def test_function_url_uses_iam_auth_on_the_function_when_nothing_is_provisioned(dev: Synth) -> None:
    (url,) = dev.of_type("AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    assert url["Properties"]["TargetFunctionArn"] == dev.arn(dev.serving.recommend_function)
    assert "Qualifier" not in url["Properties"]
    dev.template.resource_count_is("AWS::Lambda::Alias", 0)
    dev.template.resource_count_is("AWS::ApiGatewayV2::Api", 0)
    # no statement lets anyone invoke the URL without IAM authentication
    for permission in dev.of_type("AWS::Lambda::Permission").values():
        assert permission["Properties"].get("FunctionUrlAuthType") != "NONE"


def test_with_provisioned_concurrency_the_url_is_on_the_live_alias(prod: Synth) -> None:
    alias = prod.serving.live_alias
    assert alias is not None
    props = prod.props(alias)
    assert props["Name"] == LIVE_ALIAS
    assert props["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": prod.config.recommend_provisioned_concurrency
    }
    assert prod.config.recommend_provisioned_concurrency > 0
    (url,) = prod.of_type("AWS::Lambda::Url").values()
    assert (url["Properties"]["AuthType"], url["Properties"]["Qualifier"]) == ("AWS_IAM", LIVE_ALIAS)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_url_output_is_the_function_url(synths: dict[str, Synth], stage: str) -> None:
    synth = synths[stage]
    assert synth.serving.function_url is not None
    output = synth.json["Outputs"]["RecommendationsApiUrl"]
    assert output["Value"] == {"Fn::GetAtt": [synth.id(synth.serving.function_url), "FunctionUrl"]}
    assert "SigV4" in output["Description"]


def test_client_policy_invokes_the_url_only_through_iam_auth(prod: Synth) -> None:
    document = prod.props(prod.serving.client_policy)["PolicyDocument"]
    target = {"Ref": prod.id(prod.serving.live_alias)}
    by_action = {s["Action"]: s for s in document["Statement"]}
    assert set(by_action) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}  # both, since Oct 2025
    assert by_action["lambda:InvokeFunctionUrl"]["Condition"] == {
        "StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}
    }
    assert by_action["lambda:InvokeFunction"]["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": True}}
    assert all(s["Resource"] == target for s in document["Statement"])
    output = prod.json["Outputs"]["RecommendationsApiClientPolicyArn"]
    assert output["Value"] == {"Ref": prod.id(prod.serving.client_policy)}


# --- front end: HTTP API (stage option) ------------------------------------------------------------------


def test_http_api_has_the_four_routes_each_with_the_iam_authorizer(http: Synth) -> None:
    routes = [r["Properties"] for r in http.of_type("AWS::ApiGatewayV2::Route").values()]
    assert sorted(r["RouteKey"] for r in routes) == sorted(f"{m.value} {p}" for m, p in API_ROUTES)
    assert {r["RouteKey"] for r in routes} == {
        "GET /recommendations/{user_id}",
        "GET /similar/{item_id}",
        "POST /events",
        "GET /health",
    }
    for route in routes:
        assert route["AuthorizationType"] == "AWS_IAM", route["RouteKey"]
    http.template.resource_count_is("AWS::Lambda::Url", 0)


def test_http_api_integrates_the_live_alias_with_payload_2_and_route_scoped_permissions(http: Synth) -> None:
    alias = http.serving.live_alias
    assert alias is not None
    assert http.props(alias)["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": HTTP_API_PROVISIONED
    }
    (integration,) = http.of_type("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"] == {"Ref": http.id(alias)}
    permissions = [p["Properties"] for p in http.of_type("AWS::Lambda::Permission").values()]
    api_permissions = [p for p in permissions if p["Principal"] == "apigateway.amazonaws.com"]
    assert len(api_permissions) == len(API_ROUTES)
    for permission in api_permissions:
        assert permission["FunctionName"] == {"Ref": http.id(alias)}
        source = json.dumps(permission["SourceArn"])
        assert any(path in source for _, path in API_ROUTES)  # one route each, not the whole API


def test_http_api_stage_logs_every_request_as_json_and_throttles(http: Synth) -> None:
    (stage,) = [s["Properties"] for s in http.of_type("AWS::ApiGatewayV2::Stage").values()]
    assert (stage["StageName"], stage["AutoDeploy"]) == ("$default", True)
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": http.config.serving_throttle_rate_limit,
        "ThrottlingBurstLimit": http.config.serving_throttle_burst_limit,
    }
    logs = stage["AccessLogSettings"]
    assert http.serving.access_log_group is not None
    assert logs["DestinationArn"] == http.arn(http.serving.access_log_group)
    assert json.loads(logs["Format"]) == dict(ACCESS_LOG_FIELDS)
    assert "$context.requestId" in logs["Format"]  # API Gateway requires it
    group = http.props(http.serving.access_log_group)
    assert group["RetentionInDays"] == http.config.lambda_log_retention_days


def test_http_api_url_output_and_client_policy_name_each_route(http: Synth) -> None:
    api_id = http.id(http.serving.http_api)
    url = json.dumps(http.json["Outputs"]["RecommendationsApiUrl"]["Value"])
    assert api_id in url
    assert ".execute-api." in url
    (statement,) = http.props(http.serving.client_policy)["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    resources = [json.dumps(r) for r in statement["Resource"]]
    assert len(resources) == len(API_ROUTES)
    for method, path in API_ROUTES:
        arn_path = re.sub(r"\{[^}]+\}", "*", path)
        assert [r for r in resources if f'/*/{method.value}{arn_path}"' in r and api_id in r], (method, path)


def test_http_api_tells_the_handler_its_payload(http: Synth, dev: Synth) -> None:
    assert (
        http.env(http.serving.recommend_function)[contracts.SERVING_API_ENV] == contracts.SERVING_API_HTTP_API
    )
    assert (
        dev.env(dev.serving.recommend_function)[contracts.SERVING_API_ENV]
        == contracts.SERVING_API_FUNCTION_URL
    )
    # and the handler's settings read each as the path encoding it means
    for synth, encoded in ((http, False), (dev, True)):
        env = {
            k: f"value-of-{k}" if isinstance(v, dict) else v
            for k, v in synth.env(synth.serving.recommend_function).items()
        }
        assert ServingSettings.from_env(env).path_percent_encoded is encoded


def test_http_api_timeout_above_api_gateways_limit_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"recommend_timeout_seconds': expected 1 to 30 \(the http-api"):
        StageConfig(name="x", serving_api="http-api", recommend_timeout_seconds=31)
    assert StageConfig(name="x", recommend_timeout_seconds=31).recommend_timeout_seconds == 31


def test_config_front_ends_are_the_ones_the_runtime_knows() -> None:
    assert set(SERVING_APIS) == {contracts.SERVING_API_FUNCTION_URL, contracts.SERVING_API_HTTP_API}
    assert StageConfig(name="x").serving_api == contracts.SERVING_API_FUNCTION_URL


# --- functions -------------------------------------------------------------------------------------------


def test_recommend_environment_names_its_tables_and_stream(dev: Synth) -> None:
    ingest = dev.ingest
    assert dev.env(dev.serving.recommend_function) == {
        contracts.SERVING_TABLE_ENV: {"Ref": dev.id(dev.serving.table)},
        contracts.ITEMS_TABLE_ENV: {"Ref": dev.id(ingest.items_table)},
        contracts.RECENT_EVENTS_TABLE_ENV: {"Ref": dev.id(ingest.recent_events_table)},
        contracts.EVENTS_STREAM_ENV: {"Ref": dev.id(ingest.events_stream)},
        contracts.SERVING_API_ENV: contracts.SERVING_API_FUNCTION_URL,
        "POWERTOOLS_SERVICE_NAME": contracts.RECOMMEND_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": contracts.METRICS_NAMESPACE,
    }


def test_publish_environment_names_the_table_and_the_artifacts_bucket(dev: Synth) -> None:
    env = dev.env(dev.serving.publish_function)
    assert env == {
        contracts.SERVING_TABLE_ENV: {"Ref": dev.id(dev.serving.table)},
        contracts.ARTIFACTS_BUCKET_ENV: {"Ref": dev.id(dev.lake.artifacts_bucket)},
        "POWERTOOLS_SERVICE_NAME": contracts.PUBLISH_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": contracts.METRICS_NAMESPACE,
    }
    settings = PublishSettings.from_env({k: f"value-of-{k}" for k in env})
    assert settings.artifacts_bucket == f"value-of-{contracts.ARTIFACTS_BUCKET_ENV}"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_functions_take_their_sizes_concurrency_and_log_retention_from_the_stage(
    synths: dict[str, Synth], stage: str
) -> None:
    synth, config = synths[stage], synths[stage].config
    recommend = synth.props(synth.serving.recommend_function)
    publish = synth.props(synth.serving.publish_function)
    assert (recommend["MemorySize"], recommend["Timeout"], recommend["ReservedConcurrentExecutions"]) == (
        config.recommend_memory_mb,
        config.recommend_timeout_seconds,
        config.recommend_reserved_concurrency,
    )
    assert (publish["MemorySize"], publish["Timeout"], publish["EphemeralStorage"]) == (
        config.publish_memory_mb,
        config.publish_timeout_seconds,
        {"Size": config.publish_ephemeral_storage_mb},
    )
    assert publish["ReservedConcurrentExecutions"] == 1  # one publish at a time
    groups = synth.of_type("AWS::Logs::LogGroup")
    for function in (recommend, publish):
        group = groups[function["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == config.lambda_log_retention_days


def test_stages_differ_as_cdk_json_says(dev: Synth, prod: Synth) -> None:
    assert dev.serving.live_alias is None
    assert prod.serving.live_alias is not None
    dev_publish, prod_publish = (s.props(s.serving.publish_function) for s in (dev, prod))
    assert dev_publish["EphemeralStorage"]["Size"] < prod_publish["EphemeralStorage"]["Size"]


def test_functions_are_python_3_11_on_x86_64_with_both_layers(dev: Synth) -> None:
    ingest_layers = dev.props(dev.ingest.ingest_function)["Layers"]
    for function, name in (
        (dev.serving.recommend_function, "recommend"),
        (dev.serving.publish_function, "publish"),
    ):
        props = dev.props(function)
        assert (props["Runtime"], props["Architectures"]) == ("python3.11", ["x86_64"])
        assert props["Handler"] == f"lambdas.{name}.handler.lambda_handler"
        # the same Powertools parameter and SDK for pandas mapping as the ingest function (numpy, pyarrow)
        assert props["Layers"] == ingest_layers
    parameter = dev.json["Parameters"][ingest_layers[0]["Ref"]]
    assert parameter["Default"] == POWERTOOLS_LAYER_PARAMETER


@pytest.mark.parametrize(
    ("name", "others"), [("recommend", ("publish", "ingest")), ("publish", ("recommend", "events"))]
)
def test_asset_holds_the_handler_package_and_recsys_sources(
    dev: Synth, name: str, others: tuple[str, ...]
) -> None:
    key = dev.props(getattr(dev.serving, f"{name}_function"))["Code"]["S3Key"]
    asset = dev.outdir / f"asset.{key.removesuffix('.zip')}"
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    assert f"lambdas/{name}/handler.py" in files
    assert "recsys/serving/api.py" in files
    assert "recsys/publish/publish.py" in files
    assert not [f for f in files if f.startswith(tuple(f"lambdas/{o}/" for o in others))]
    assert (asset / f"lambdas/{name}/handler.py").read_bytes() == (
        REPO_ROOT / f"lambdas/{name}/handler.py"
    ).read_bytes()


# --- permissions -----------------------------------------------------------------------------------------


def _roles(synth: Synth) -> list[Any]:
    return [synth.serving.recommend_function.role, synth.serving.publish_function.role]


@pytest.mark.parametrize("front_end", ["function-url", "http-api"])
def test_no_serving_role_or_client_policy_has_a_wildcard_action(
    dev: Synth, http: Synth, front_end: str
) -> None:
    synth = dev if front_end == "function-url" else http
    client = synth.props(synth.serving.client_policy)["PolicyDocument"]["Statement"]
    for statements in [synth.role_statements(role) for role in _roles(synth)] + [client]:
        assert statements
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert not [a for a in _list(statement["Action"]) if "*" in a], statement
            assert "*" not in _list(statement["Resource"]), statement
    for role in _roles(synth):
        assert "ManagedPolicyArns" not in synth.props(role)


def _grants(synth: Synth, role: Any) -> dict[str, set[str]]:
    """Actions per resource, named: tables and the stream by attribute, S3 as "<bucket>[/<suffix>]"."""
    names = {
        synth.id(synth.serving.table): "serving_table",
        synth.id(synth.ingest.items_table): "items_table",
        synth.id(synth.ingest.recent_events_table): "recent_events_table",
        synth.id(synth.ingest.events_stream): "events_stream",
        synth.id(synth.lake.artifacts_bucket): "artifacts",
        synth.id(synth.lake.ingest_bucket): "ingest",
        synth.id(synth.lake.curated_bucket): "curated",
    }
    grants: dict[str, set[str]] = {}
    for statement in synth.role_statements(role):
        actions = set(_list(statement["Action"]))
        if all(a.startswith("logs:") for a in actions):
            continue
        for resource in _list(statement["Resource"]):
            if "Fn::Join" in resource:
                head, suffix = resource["Fn::Join"][1]
                key = names[head["Fn::GetAtt"][0]] + suffix
            else:
                key = names[resource["Fn::GetAtt"][0]]
            if "Condition" in statement:
                key += " if " + json.dumps(statement["Condition"], sort_keys=True)
            grants.setdefault(key, set()).update(actions)
    return grants


def test_api_role_reads_recommendations_and_writes_only_events(dev: Synth) -> None:
    assert _grants(dev, dev.serving.recommend_function.role) == {
        "serving_table": {"dynamodb:GetItem"},
        "items_table": {"dynamodb:BatchGetItem", "dynamodb:Scan"},
        "recent_events_table": {"dynamodb:Query", "dynamodb:BatchWriteItem"},
        "events_stream": {"firehose:PutRecordBatch"},
        f"artifacts/{contracts.MODELS_PREFIX}*": {"s3:GetObject"},
    }


def test_publish_role_loads_the_serving_table_from_the_models_prefix(dev: Synth) -> None:
    models = contracts.MODELS_PREFIX
    assert _grants(dev, dev.serving.publish_function.role) == {
        "serving_table": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",  # TransactWriteItems is authorized per item action
            "dynamodb:Scan",
        },
        'artifacts if {"StringLike": {"s3:prefix": ["' + models + '*"]}}': {"s3:ListBucket"},
        f"artifacts/{models}*": {"s3:GetObject"},
        f"artifacts/{models}*/{contracts.MODEL_ITEM_VECTORS_FILE}": {"s3:PutObject"},
        # a DSSTNE winner is published from its own folder (stacks/pipeline_stack.py, orchestration)
        'artifacts if {"StringLike": {"s3:prefix": ["dsstne/*/model/*"]}}': {"s3:ListBucket"},
        "artifacts/dsstne/*/model/*": {"s3:GetObject"},
    }


_TRANSACTION_ITEM_ACTIONS = {"TransactWriteItems": {"ConditionCheckItem", "PutItem"}}
"""TransactWriteItems has no IAM action of its own: each item's action is authorized (publish's switch is a
ConditionCheck and a Put)."""


def _dynamodb_actions_called(*globs: str) -> set[str]:
    """IAM actions of every DynamoDB operation the runtime code calls (`.<snake_case operation>(`)."""
    operations = botocore.session.get_session().get_service_model("dynamodb").operation_names
    code = "\n".join(p.read_text(encoding="utf-8") for g in globs for p in sorted(REPO_ROOT.glob(g)))
    called: set[str] = set()
    for operation in operations:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        if re.search(rf"\.{snake}\(", code):
            called |= _TRANSACTION_ITEM_ACTIONS.get(operation, {operation})
    return {f"dynamodb:{a}" for a in called}


def test_every_dynamodb_call_of_the_runtime_is_granted_and_nothing_more(dev: Synth) -> None:
    # the API: recsys.serving, and the events domain for POST /events
    api = _dynamodb_actions_called(
        "recsys/serving/*.py", "recsys/events/*.py", "recsys/ingest/batch_write.py"
    )
    granted = set().union(*_grants(dev, dev.serving.recommend_function.role).values())
    assert api == {a for a in granted if a.startswith("dynamodb:")}
    publish = _dynamodb_actions_called("recsys/publish/*.py", "lambdas/publish/*.py")
    granted = set().union(*_grants(dev, dev.serving.publish_function.role).values())
    assert publish == {a for a in granted if a.startswith("dynamodb:")}


# --- outputs ---------------------------------------------------------------------------------------------


def test_outputs_name_the_table_and_both_functions(dev: Synth) -> None:
    outputs = dev.json["Outputs"]
    assert outputs["ServingTableName"]["Value"] == {"Ref": dev.id(dev.serving.table)}
    assert outputs["RecommendFunctionName"]["Value"] == {"Ref": dev.id(dev.serving.recommend_function)}
    assert outputs["PublishFunctionName"]["Value"] == {"Ref": dev.id(dev.serving.publish_function)}
