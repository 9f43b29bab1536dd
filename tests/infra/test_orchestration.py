"""The pipeline state machine: its definition (captured DefinitionString, tokens replaced by a placeholder),
retries and catches, logging and tracing, the ARN-by-name wiring, the step Lambdas and the schedule.

One plugin-free synth per stage for the whole module (cdk-nag and cfn-lint have their own tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Template

from recsys import contracts
from stacks.app_factory import build_app, stack_id
from stacks.config import StageConfig
from stacks.pipeline_stack import RecsysPipelineStack

TOKEN = "<token>"
MAIN_TASKS = ("Preprocess", "ReadManifest", "EvaluateAndGate", "Publish", "Finish")


class Synth:
    def __init__(self, stage: str, outdir: Path) -> None:
        app = build_app(
            context={"stage": stage, "aws:cdk:bundling-stacks": []}, outdir=str(outdir), nag=False
        )
        stack = app.node.find_child(stack_id(stage))
        assert isinstance(stack, RecsysPipelineStack)
        self.stack = stack
        self.config = StageConfig.from_context(stage, app.node.try_get_context("stages"))
        self.template = Template.from_stack(stack)
        self.resources: dict[str, Any] = dict(self.template.to_json())["Resources"]
        definition = Capture()
        self.template.has_resource_properties(
            "AWS::StepFunctions::StateMachine", {"DefinitionString": definition}
        )
        parts = definition.as_object()["Fn::Join"][1]
        self.definition: dict[str, Any] = json.loads(
            "".join(p if isinstance(p, str) else TOKEN for p in parts)
        )
        self.states: dict[str, Any] = self.definition["States"]
        self.branches = {b["StartAt"]: b["States"] for b in self.states["Train"]["Branches"]}

    def id(self, construct: Any) -> str:
        child = getattr(construct, "node", None) and construct.node.default_child
        return str(self.stack.resolve((child or construct).logical_id))

    def props(self, construct: Any) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[self.id(construct)]["Properties"]
        return props

    def statements(self, role: Any) -> list[dict[str, Any]]:
        ref = {"Ref": self.id(role)}
        return [
            s
            for r in self.resources.values()
            if r["Type"] == "AWS::IAM::Policy" and ref in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]
        ]


@pytest.fixture(scope="module", params=["dev", "prod"])
def synth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth("dev", tmp_path_factory.mktemp("dev-only"))


def test_the_run_goes_preprocess_manifest_train_evaluate_gate(dev: Synth) -> None:
    s = dev.states
    assert dev.definition["StartAt"] == "Preprocess"
    assert [s["Preprocess"]["Next"], s["ReadManifest"]["Next"], s["Train"]["Next"]] == [
        "ReadManifest",
        "Train",
        "EvaluateAndGate",
    ]
    assert s["EvaluateAndGate"]["Next"] == "Gate"
    gate = s["Gate"]
    assert gate["Choices"] == [{"Variable": "$.evaluation.publish", "BooleanEquals": True, "Next": "Publish"}]
    assert gate["Default"] == "NotifyKept"
    assert [s["Publish"]["Next"], s["NotifyPublished"]["Next"], s["NotifyKept"]["Next"]] == [
        "NotifyPublished"
    ] + ["Finish"] * 2
    assert s["Finish"]["Next"] == "RunSucceeded"
    assert s["Finish"]["Parameters"] == {"run_id.$": "$.run_id", "succeeded": True}


def test_jobs_wait_for_completion_and_take_the_run_id(dev: Synth) -> None:
    s, fm, dsstne = dev.states, dev.branches["TrainFm"], dev.branches["TrainDsstne"]
    assert s["Preprocess"]["Resource"] == f"arn:{TOKEN}:states:::glue:startJobRun.sync"
    assert s["Preprocess"]["Parameters"]["Arguments"] == {f"--{contracts.GLUE_ARG_RUN_ID}.$": "$.run_id"}
    assert fm["TrainFm"]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    assert fm["TrainFm"]["Parameters"]["HyperParameters"]["feature_dim.$"] == (
        "States.Format('{}', $.run.manifest.feature_dim)"
    )
    assert s["ReadManifest"]["ResultSelector"] == {"manifest.$": "States.StringToJson($.Body)"}
    assert (
        s["ReadManifest"]["Parameters"]["Key.$"] == "States.Format('curated/runs/{}/manifest.json', $.run_id)"
    )
    for task in (fm["FmTopK"], dsstne["TrainDsstne"]):
        assert task["Resource"].endswith(":states:::batch:submitJob.sync")
    env = {e["Name"]: e for e in dsstne["TrainDsstne"]["Parameters"]["ContainerOverrides"]["Environment"]}
    assert env[contracts.DSSTNE_INPUT_URI_ENV]["Value.$"] == (
        f"States.Format('s3://{TOKEN}/curated/runs/{{}}/dsstne/', $.run_id)"
    )
    topk = {e["Name"]: e for e in fm["FmTopK"]["Parameters"]["ContainerOverrides"]["Environment"]}
    assert topk[contracts.FM_TOPK_MODEL_URI_ENV]["Value.$"] == "$.fm_training.model_artifacts"
    assert topk[contracts.FM_TOPK_OUTPUT_URI_ENV]["Value.$"] == (
        f"States.Format('s3://{TOKEN}/models/{contracts.FM_MODEL_VERSION_PREFIX}{{}}/', $.run_id)"
    )
    # each branch ends in its candidate, or in {name, error} when it failed
    assert fm["FmCandidate"]["Parameters"]["version.$"] == "States.Format('fm-{}', $.run_id)"
    assert dsstne["DsstneCandidate"]["Parameters"]["model_uri.$"] == (
        f"States.Format('s3://{TOKEN}/dsstne/{{}}/model/', $.run_id)"
    )
    assert dsstne["DsstneFailed"]["Parameters"] == {"name": "dsstne", "error.$": "$.error"}
    assert dev.states["EvaluateAndGate"]["Parameters"]["candidates.$"] == "$.candidates"


def test_every_task_is_caught_and_the_failure_path_finishes_the_run(dev: Synth) -> None:
    s = dev.states
    for name in (*MAIN_TASKS, "Train"):
        catches = s[name]["Catch"]
        assert catches == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailed"}
        ], name
    for branch, failed in (
        (dev.branches["TrainFm"], "FmFailed"),
        (dev.branches["TrainDsstne"], "DsstneFailed"),
    ):
        for name, state in branch.items():
            if state["Type"] == "Task":
                assert state["Catch"][0]["Next"] == failed, name
    for notify in ("NotifyPublished", "NotifyKept"):
        assert s[notify]["Catch"][0]["Next"] == "Finish"  # a lost notification does not fail a published run
    assert s["NotifyFailed"]["Next"] == "FinishFailed"
    assert s["NotifyFailed"]["Catch"][0]["Next"] == "FinishFailed"
    assert s["FinishFailed"]["Parameters"] == {"run_id.$": "$.run_id", "succeeded": False}
    assert s["FinishFailed"]["Next"] == "RunFailed"
    assert s["RunFailed"]["Type"] == "Fail"
    # the live model only changes in Publish, which only the gate's true branch reaches
    reaching_publish = [n for n, st in s.items() if st.get("Next") == "Publish"]
    assert reaching_publish == []


def test_tasks_retry_throttling_with_backoff_and_jitter(dev: Synth) -> None:
    tasks = {**dev.states, **dev.branches["TrainFm"], **dev.branches["TrainDsstne"]}
    for name, state in tasks.items():
        if state["Type"] != "Task":
            continue
        backoff = [r for r in state["Retry"] if r.get("JitterStrategy") == "FULL"]
        assert backoff, name
        assert all(r["BackoffRate"] == 2 and r["MaxAttempts"] >= 3 for r in backoff), name
        errors = {e for r in backoff for e in r["ErrorEquals"]}
        assert errors & {"ThrottlingException", "Glue.ThrottlingException", "SNS.ThrottledException"}, name
    assert "Glue.ConcurrentRunsExceededException" in tasks["Preprocess"]["Retry"][0]["ErrorEquals"]
    assert "LoadError" in tasks["Publish"]["Retry"][-1]["ErrorEquals"]
    capacity = [r for r in tasks["TrainFm"]["Retry"] if r["ErrorEquals"] == ["States.TaskFailed"]]
    assert capacity == [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 300, "MaxAttempts": 1}]


def test_logs_all_to_an_encrypted_group_with_tracing_and_the_stage_timeout(synth: Synth) -> None:
    orchestration = synth.stack.orchestration
    props = synth.props(orchestration.state_machine)
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    log_group = synth.props(orchestration.log_group)
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": [synth.id(synth.stack.notifications.key), "Arn"]}
    assert props["StateMachineName"] == synth.stack.state_machine_name
    assert synth.definition["TimeoutSeconds"] == synth.config.pipeline_timeout_minutes * 60


def test_ingest_and_finish_start_this_state_machine_by_its_arn(synth: Synth) -> None:
    stack = synth.stack
    arn = stack.resolve(stack.orchestration.state_machine_arn)
    name = stack.state_machine_name
    assert arn == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":states:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":stateMachine:{name}",
            ],
        ]
    }
    for function in (stack.ingest.ingest_function, stack.orchestration.finish_function):
        env = synth.props(function)["Environment"]["Variables"]
        assert env[contracts.STATE_MACHINE_ARN_ENV] == arn
        role = function.role
        start = [s for s in synth.statements(role) if s["Action"] == "states:StartExecution"]
        assert start == [{"Action": "states:StartExecution", "Effect": "Allow", "Resource": arn}]


def test_step_lambdas_are_the_pipeline_handler_entry_points(synth: Synth) -> None:
    from lambdas.pipeline import handler

    orchestration = synth.stack.orchestration
    for name, function in orchestration.functions.items():
        entry = synth.props(function)["Handler"]
        assert entry == f"lambdas.pipeline.handler.{name.lower()}"
        assert callable(getattr(handler, name.lower()))
    env = synth.props(orchestration.evaluate_function)["Environment"]["Variables"]
    config = synth.config
    assert env[contracts.GATE_METRIC_ENV] == config.gate_metric
    assert float(env[contracts.GATE_MARGIN_ENV]) == config.gate_margin
    assert float(env[contracts.GATE_TOLERANCE_ENV]) == config.gate_tolerance
    assert env[contracts.EVAL_K_ENV] == str(config.eval_k)
    assert synth.props(orchestration.evaluate_function)["EphemeralStorage"] == {
        "Size": config.evaluate_ephemeral_storage_mb
    }


def test_schedule_only_where_the_stage_sets_one(synth: Synth) -> None:
    schedules = synth.template.find_resources("AWS::Scheduler::Schedule")
    expression = synth.config.pipeline_schedule
    if not expression:
        assert schedules == {}
        assert synth.stack.orchestration.request_function is None
        return
    (schedule,) = schedules.values()
    assert schedule["Properties"]["ScheduleExpression"] == expression
    request = synth.stack.orchestration.request_function
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [synth.id(request), "Arn"]}


def test_step_roles_get_their_prefixes_only(dev: Synth) -> None:
    stack = dev.stack
    curated = {"Fn::GetAtt": [dev.id(stack.data_lake.curated_bucket), "Arn"]}
    artifacts = {"Fn::GetAtt": [dev.id(stack.data_lake.artifacts_bucket), "Arn"]}

    def objects(bucket: Any, prefix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [bucket, f"/{prefix}"]]}

    def resources(role: Any, action: str) -> list[Any]:
        found = []
        for s in dev.statements(role):
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            if action.lower() in (a.lower() for a in actions):  # CallAwsService writes s3:getObject
                found += s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        return found

    dsstne_reads = resources(stack.dsstne.job_role, "s3:GetObject")
    assert objects(curated, "curated/runs/*/dsstne/*") in dsstne_reads
    topk = stack.orchestration.fm_topk_job_role
    assert resources(topk, "s3:PutObject") == [objects(artifacts, "models/fm-*")]
    sm_reads = resources(stack.orchestration.state_machine.role, "s3:GetObject")
    assert sm_reads == [objects(curated, "curated/runs/*/manifest.json")]
    assert objects(artifacts, "dsstne/*/model/*") in resources(
        stack.serving.publish_function.role, "s3:GetObject"
    )
    assert resources(stack.orchestration.evaluate_function.role, "s3:PutObject") == []


def test_fm_topk_runs_on_fargate_with_the_job_image(dev: Synth) -> None:
    orchestration = dev.stack.orchestration
    job = dev.props(orchestration.fm_topk_job_definition)
    assert job["PlatformCapabilities"] == ["FARGATE"]
    container = job["ContainerProperties"]
    assert container["Command"] == ["python", "-m", "training.fm.job"]
    assert container["NetworkConfiguration"] == {"AssignPublicIp": "ENABLED"}
    requirements = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
    assert requirements == {
        "VCPU": str(dev.config.fm_topk_vcpus),
        "MEMORY": str(dev.config.fm_topk_memory_mb),
    }
    dsstne_job = dev.props(dev.stack.dsstne.job_definition)
    assert container["Image"] == dsstne_job["ContainerProperties"]["Image"]
    environment = dev.props(orchestration.fm_topk_compute_environment)
    assert environment["ComputeResources"]["Type"] == "FARGATE"
