"""The project's Python Lambdas: one runtime, one way to package them without Docker, one way to build them.

Each function's asset is a folder written at synth holding `lambdas/__init__.py`, `lambdas/<function>/*.py`
and every `.py` of `recsys/` (sources only, no `__pycache__`). CDK hashes a folder by its files' paths and
bytes, so the asset (and the deployed code) changes only when a source does. Each function gets its own
role with nothing but its log group: data permissions are granted in the composition stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Size, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from recsys import contracts

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.X86_64  # the AWS SDK for pandas layer table is the x86_64 build
LAMBDA_PACKAGES = ("recsys",)
RUNTIME_REASON = (
    "Python 3.11: the Python the handlers are tested on (the project's, and Glue 5.0's); the pinned AWS SDK "
    "for pandas layer table (stacks/ingest.py: pyarrow, numpy) is for it. A newer runtime needs that table's "
    "rows for it and a run of the handler tests on it."
)


def build_lambda_asset(target: Path, function: str, root: Path = REPO_ROOT) -> Path:
    """Write the asset folder of `lambdas/<function>/`: its .py files, `lambdas/__init__.py` and recsys's .py.

    Raises FileNotFoundError naming the handler when `lambdas/<function>/handler.py` is missing, so a
    stack is never synthesized with a function that cannot start.
    """
    handler = root / "lambdas" / function / "handler.py"
    if not handler.is_file():
        raise FileNotFoundError(f"{handler}: the {function} Lambda's handler is missing (nothing to package)")
    sources = [root / "lambdas" / "__init__.py", *sorted(handler.parent.rglob("*.py"))]
    for package in LAMBDA_PACKAGES:
        sources += sorted((root / package).rglob("*.py"))
    for source in sources:
        relative = source.relative_to(root)
        if "__pycache__" in relative.parts:
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
        destination.chmod(0o644)
    return target


def python_function(
    scope: Construct,
    title: str,
    *,
    handler: str,
    asset: Path,
    service: str,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    memory_mb: int,
    timeout: Duration,
    layers: list[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    description: str,
    role_description: str,
    reserved_concurrency: int | None = None,
    ephemeral_storage: Size | None = None,
) -> lambda_.Function:
    """`<title>Role` (logs only), `<title>Logs` and `<title>Function` in `scope`, Powertools configured."""
    role = iam.Role(
        scope,
        f"{title}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    log_group = logs.LogGroup(scope, f"{title}Logs", retention=log_retention, removal_policy=removal_policy)
    log_group.grant_write(role)  # logs:CreateLogStream and logs:PutLogEvents on this log group only
    function = lambda_.Function(
        scope,
        f"{title}Function",
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=lambda_.Code.from_asset(str(asset)),
        role=role,
        memory_size=memory_mb,
        timeout=timeout,
        reserved_concurrent_executions=reserved_concurrency,
        ephemeral_storage_size=ephemeral_storage,
        layers=layers,
        log_group=log_group,
        environment={
            **environment,
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": contracts.METRICS_NAMESPACE,
        },
        description=description,
    )
    Validations.of(function).acknowledge(Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_REASON))
    return function


def packaged_function(
    scope: Construct,
    name: str,
    *,
    staging: Path,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    service: str,
    memory_mb: int,
    timeout: Duration,
    reserved_concurrency: int,
    layers: list[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    description: str,
    ephemeral_storage: Size | None = None,
) -> lambda_.Function:
    """The function of `lambdas/<name>/handler.py` (`lambda_handler`), packaged under `staging`."""
    title = name.title()
    return python_function(
        scope,
        title,
        handler=f"lambdas.{name}.handler.lambda_handler",
        asset=build_lambda_asset(staging / name, name),
        service=service,
        log_retention=log_retention,
        removal_policy=removal_policy,
        memory_mb=memory_mb,
        timeout=timeout,
        layers=layers,
        environment=environment,
        description=description,
        role_description=f"{title} Lambda: its logs here; data permissions granted in the stack",
        reserved_concurrency=reserved_concurrency,
        ephemeral_storage=ephemeral_storage,
    )
