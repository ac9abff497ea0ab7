"""deploy/ecs: the task definition, service and autoscaling files are the request bodies of
RegisterTaskDefinition, CreateService, RegisterScalableTarget and PutScalingPolicy. Each is
validated against botocore's own service model (what the AWS CLI and SDKs send), then
registered in moto, and its values are checked against the engine and the image."""

from __future__ import annotations

import copy
import json
import math
import tomllib
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from sandbox.aws import MotoServer
from tests.deploy.dockerfile import parse_dockerfile
from tests.deploy.support import DEPLOY, ROOT, load_json, settings_from_env

ECS = DEPLOY / "ecs"
TASK = ECS / "task-definition.json"
SERVICE = ECS / "service.json"
SCALING = ECS / "autoscaling.json"
API_TASK = ECS / "api-task-definition.json"
API_SERVICE = ECS / "api-service.json"
WEBHOOKS_TASK = ECS / "webhooks-task-definition.json"
WEBHOOKS_SERVICE = ECS / "webhooks-service.json"
RECONCILE_TASK = ECS / "reconcile-task-definition.json"
RECONCILE_SCHEDULE = ECS / "reconcile-schedule.json"  # EventBridge Scheduler's CreateSchedule
DRAIN_TARGET_S = 60  # as in deploy/k8s/base/scaledobject.yaml
FARGATE_MAX_STOP_TIMEOUT_S = 120


def _validate(service: str, operation: str, params: dict[str, Any]) -> str:
    """botocore's own parameter validation; the empty string when valid."""
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    assert shape is not None
    report = ParamValidator().validate(params, shape)
    return str(report.generate_report()) if report.has_errors() else ""


def _container() -> dict[str, Any]:
    (container,) = load_json(TASK)["containerDefinitions"]
    assert isinstance(container, dict)
    return container


def _environment() -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container()["environment"]}


@pytest.mark.parametrize(
    ("service", "operation", "document"),
    [
        ("ecs", "RegisterTaskDefinition", lambda: load_json(TASK)),
        ("ecs", "CreateService", lambda: load_json(SERVICE)),
        ("ecs", "RegisterTaskDefinition", lambda: load_json(API_TASK)),
        ("ecs", "CreateService", lambda: load_json(API_SERVICE)),
        ("ecs", "RegisterTaskDefinition", lambda: load_json(WEBHOOKS_TASK)),
        ("ecs", "CreateService", lambda: load_json(WEBHOOKS_SERVICE)),
        ("ecs", "RegisterTaskDefinition", lambda: load_json(RECONCILE_TASK)),
        ("scheduler", "CreateSchedule", lambda: load_json(RECONCILE_SCHEDULE)),
        (
            "application-autoscaling",
            "RegisterScalableTarget",
            lambda: load_json(SCALING)["scalableTarget"],
        ),
        (
            "application-autoscaling",
            "PutScalingPolicy",
            lambda: load_json(SCALING)["scalingPolicy"],
        ),
    ],
)
def test_each_file_is_a_valid_request_for_botocores_service_model(
    service: str, operation: str, document: Any
) -> None:
    assert _validate(service, operation, document()) == ""


def test_botocores_validation_rejects_a_broken_task_definition() -> None:
    broken = copy.deepcopy(load_json(TASK))
    broken["containerDefinitions"][0]["stopTimeout"] = "40"
    broken["containerDefinitions"][0]["healthcheck"] = broken["containerDefinitions"][0].pop(
        "healthCheck"
    )
    report = _validate("ecs", "RegisterTaskDefinition", broken)
    assert "stopTimeout" in report
    assert "healthcheck" in report


def _client(server: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=server.url, region_name="eu-west-1")  # type: ignore[call-overload]


def test_the_task_definition_registers_in_moto_and_comes_back_as_written(
    moto_server: MotoServer,
) -> None:
    ecs = _client(moto_server, "ecs")
    task = load_json(TASK)
    registered = ecs.register_task_definition(**task)["taskDefinition"]
    assert registered["family"] == "campaign-consumer"
    described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])
    (container,) = described["taskDefinition"]["containerDefinitions"]
    for field in ("healthCheck", "stopTimeout", "secrets", "user", "readonlyRootFilesystem"):
        assert container[field] == task["containerDefinitions"][0][field], field
    assert container["logConfiguration"]["logDriver"] == "awslogs"


def _with_real_network(server: MotoServer, service: dict[str, Any], cidr: int) -> dict[str, Any]:
    """The file's subnet and security group ids are placeholders: use real ones, as an
    operator does (moto checks they exist)."""
    ec2 = _client(server, "ec2")
    vpc = ec2.create_vpc(CidrBlock=f"10.{cidr}.0.0/16")["Vpc"]["VpcId"]
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    network["subnets"] = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{cidr}.{n}.0/24")["Subnet"]["SubnetId"]
        for n in range(len(network["subnets"]))
    ]
    group = ec2.create_security_group(GroupName=service["serviceName"], Description="d", VpcId=vpc)
    network["securityGroups"] = [group["GroupId"]]
    return service


def test_the_service_and_its_autoscaling_register_in_moto(moto_server: MotoServer) -> None:
    ecs = _client(moto_server, "ecs")
    service = _with_real_network(moto_server, load_json(SERVICE), 20)
    ecs.create_cluster(clusterName=service["cluster"])
    ecs.register_task_definition(**load_json(TASK))
    created = ecs.create_service(**service)["service"]
    assert created["serviceName"] == "campaign-consumer"
    assert created["desiredCount"] == 1
    scaling = load_json(SCALING)
    autoscaling = _client(moto_server, "application-autoscaling")
    autoscaling.register_scalable_target(**scaling["scalableTarget"])
    autoscaling.put_scaling_policy(**scaling["scalingPolicy"])
    (policy,) = autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert policy["PolicyType"] == "TargetTrackingScaling"


def test_the_container_is_the_image_locked_down_with_the_token_from_a_secret_store() -> None:
    container = _container()
    assert container["command"] == ["campaign-consumer"]
    final = parse_dockerfile((ROOT / "Dockerfile").read_text())[-1]
    user = final.last("USER")
    assert user is not None
    assert container["user"] == user.args
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    (secret,) = container["secrets"]
    assert secret["name"] == "META_ACCESS_TOKEN"
    assert secret["valueFrom"].startswith(("arn:aws:secretsmanager:", "arn:aws:ssm:"))
    assert "META_ACCESS_TOKEN" not in _environment()
    options = container["logConfiguration"]["options"]
    assert {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <= set(options)


def test_the_health_check_is_the_images_and_the_stop_timeout_outlives_the_drain() -> None:
    container = _container()
    final = parse_dockerfile((ROOT / "Dockerfile").read_text())[-1]
    healthcheck = final.last("HEALTHCHECK")
    assert healthcheck is not None
    image_argv = json.loads(healthcheck.args[healthcheck.args.index("CMD") + 3 :])
    assert container["healthCheck"]["command"] == ["CMD", *image_argv]
    settings = settings_from_env(_environment(), META_ACCESS_TOKEN="from-secrets-manager")
    assert settings.shutdown_timeout_s < container["stopTimeout"] <= FARGATE_MAX_STOP_TIMEOUT_S
    assert container["portMappings"][0]["containerPort"] == settings.metrics_port
    assert container["dockerLabels"]["ECS_PROMETHEUS_EXPORTER_PORT"] == str(settings.metrics_port)
    assert container["dockerLabels"]["ECS_PROMETHEUS_JOB_NAME"] == "campaign-consumer"


def test_autoscaling_tracks_the_backlog_per_task_derived_from_batch_size_and_rate() -> None:
    settings = settings_from_env(_environment(), META_ACCESS_TOKEN="x")
    service = load_json(SERVICE)
    scaling = load_json(SCALING)
    target = scaling["scalableTarget"]
    resource_id = f"service/{service['cluster']}/{service['serviceName']}"
    assert target["ResourceId"] == scaling["scalingPolicy"]["ResourceId"] == resource_id
    assert 1 <= target["MinCapacity"] <= target["MaxCapacity"]
    assert target["MaxCapacity"] * settings.send_rate_per_second <= 80  # Meta's default
    config = scaling["scalingPolicy"]["TargetTrackingScalingPolicyConfiguration"]
    messages_per_s = settings.send_rate_per_second / settings.batch_size
    assert config["TargetValue"] == math.floor(messages_per_s * DRAIN_TARGET_S)
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    (returned,) = [m for m in metrics.values() if m.get("ReturnData", True)]
    assert returned["Expression"] == "(visible + inflight) / tasks"
    for name in ("visible", "inflight"):
        dimensions = metrics[name]["MetricStat"]["Metric"]["Dimensions"]
        assert dimensions == [{"Name": "QueueName", "Value": settings.campaign_queue_name}]


# -- the operator API -------------------------------------------------------------------------


def _api_container() -> dict[str, Any]:
    (container,) = load_json(API_TASK)["containerDefinitions"]
    assert isinstance(container, dict)
    return container


def test_the_api_task_and_service_register_in_moto_next_to_the_consumer(
    moto_server: MotoServer,
) -> None:
    ecs = _client(moto_server, "ecs")
    service = _with_real_network(moto_server, load_json(API_SERVICE), 21)
    ecs.create_cluster(clusterName=service["cluster"])
    registered = ecs.register_task_definition(**load_json(API_TASK))["taskDefinition"]
    assert registered["family"] == service["taskDefinition"] == "campaign-api"
    created = ecs.create_service(**service)["service"]
    assert created["serviceName"] == "campaign-api"
    assert created["desiredCount"] >= 2


def test_the_api_service_is_private_no_public_ip_and_no_load_balancer() -> None:
    service = load_json(API_SERVICE)
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert "loadBalancers" not in service
    assert service["cluster"] == load_json(SERVICE)["cluster"]
    consumer_groups = load_json(SERVICE)["networkConfiguration"]["awsvpcConfiguration"]
    api_groups = service["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
    assert set(api_groups).isdisjoint(consumer_groups["securityGroups"]), "its own ingress rule"


def test_the_api_container_runs_campaign_api_locked_down_with_its_keys_from_secrets_manager() -> (
    None
):
    container = _api_container()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[container["command"][0]] == "api.cli:main"
    from api.cli import _parser as api_parser

    args = api_parser().parse_args(container["command"][1:])
    assert args.host == "0.0.0.0"
    assert container["portMappings"] == [
        {"name": "http", "containerPort": args.port, "protocol": "tcp"}
    ]
    final = parse_dockerfile((ROOT / "Dockerfile").read_text())[-1]
    user = final.last("USER")
    assert user is not None
    assert container["user"] == user.args
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(secrets) == {"OPERATOR_API_KEYS", "META_ACCESS_TOKEN"}
    assert all(v.startswith("arn:aws:secretsmanager:") for v in secrets.values())
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert not set(secrets) & set(environment)
    settings = settings_from_env(
        environment, META_ACCESS_TOKEN="from-secrets-manager", OPERATOR_API_KEYS="ops:secret"
    )
    assert settings.operator_keys == {"ops": "secret"}
    assert settings.shutdown_timeout_s < container["stopTimeout"] <= FARGATE_MAX_STOP_TIMEOUT_S
    # The image's HEALTHCHECK probes the consumer's port; the API's is its own /healthz.
    (script,) = container["healthCheck"]["command"][3:]
    assert f"http://127.0.0.1:{args.port}/healthz" in script
    shared = {k: v for k, v in _environment().items() if k in environment}
    assert shared == environment, "the same tables, queue and Meta number as the consumer"
    options = container["logConfiguration"]["options"]
    assert options["awslogs-group"] == "/ecs/campaign-api"


# -- the webhook receiver ---------------------------------------------------------------------


def _webhooks_container() -> dict[str, Any]:
    (container,) = load_json(WEBHOOKS_TASK)["containerDefinitions"]
    assert isinstance(container, dict)
    return container


def test_the_webhooks_task_and_service_register_in_moto_next_to_the_others(
    moto_server: MotoServer,
) -> None:
    ecs = _client(moto_server, "ecs")
    service = _with_real_network(moto_server, load_json(WEBHOOKS_SERVICE), 22)
    ecs.create_cluster(clusterName=service["cluster"])
    registered = ecs.register_task_definition(**load_json(WEBHOOKS_TASK))["taskDefinition"]
    assert registered["family"] == service["taskDefinition"] == "campaign-webhooks"
    created = ecs.create_service(**service)["service"]
    assert created["serviceName"] == "campaign-webhooks"
    assert created["desiredCount"] >= 2
    (balancer,) = created["loadBalancers"]
    assert (balancer["containerName"], balancer["containerPort"]) == ("webhooks", 8080)


def test_the_webhooks_service_is_reached_only_through_its_load_balancers_http_port() -> None:
    service = load_json(WEBHOOKS_SERVICE)
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert network["assignPublicIp"] == "DISABLED", "public through the load balancer only"
    (balancer,) = service["loadBalancers"]
    (container,) = load_json(WEBHOOKS_TASK)["containerDefinitions"]
    assert balancer["containerName"] == container["name"]
    ports = {p["name"]: p["containerPort"] for p in container["portMappings"]}
    assert balancer["containerPort"] == ports["http"] != ports["metrics"]
    assert ":targetgroup/" in balancer["targetGroupArn"]
    assert service["cluster"] == load_json(SERVICE)["cluster"]
    others = {
        group
        for path in (SERVICE, API_SERVICE)
        for group in load_json(path)["networkConfiguration"]["awsvpcConfiguration"][
            "securityGroups"
        ]
    }
    assert set(network["securityGroups"]).isdisjoint(others), "its own ingress rule"


def test_the_webhooks_container_runs_campaign_webhooks_locked_down_with_secrets_manager() -> None:
    container = _webhooks_container()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[container["command"][0]] == "webhooks.cli:main"
    from webhooks.cli import _parser as webhooks_parser

    args = webhooks_parser().parse_args(container["command"][1:])
    assert args.host == "0.0.0.0"
    assert container["portMappings"] == [
        {"name": "http", "containerPort": args.port, "protocol": "tcp"},
        {"name": "metrics", "containerPort": args.metrics_port, "protocol": "tcp"},
    ]
    final = parse_dockerfile((ROOT / "Dockerfile").read_text())[-1]
    user = final.last("USER")
    assert user is not None
    assert container["user"] == user.args
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(secrets) == {"META_APP_SECRET", "META_WEBHOOK_VERIFY_TOKEN"}
    assert all(v.startswith("arn:aws:secretsmanager:") for v in secrets.values())
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert not set(secrets) & set(environment)
    settings = settings_from_env(
        environment, META_APP_SECRET="from-secrets-manager", META_WEBHOOK_VERIFY_TOKEN="t"
    )
    assert (settings.webhook_port, settings.webhook_metrics_port) == (args.port, args.metrics_port)
    assert settings.shutdown_timeout_s < container["stopTimeout"] <= FARGATE_MAX_STOP_TIMEOUT_S
    (script,) = container["healthCheck"]["command"][3:]
    assert f"http://127.0.0.1:{args.port}/healthz" in script
    labels = container["dockerLabels"]
    assert labels["ECS_PROMETHEUS_EXPORTER_PORT"] == str(args.metrics_port)
    assert labels["ECS_PROMETHEUS_JOB_NAME"] == "campaign-webhooks"
    shared = {k: v for k, v in _environment().items() if k in environment}
    assert shared == {k: v for k, v in environment.items() if k in _environment()}
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/campaign-webhooks"


def test_reconcile_runs_on_a_schedule_as_its_own_task_under_its_own_role(
    moto_server: MotoServer,
) -> None:
    """`campaign-producer reconcile` as a task of its own (not the consumer's task with the
    producer's role): its task role is the reconcile one (ReconcilePolicyArn), distinct from
    every other task's; no secret (it never calls Meta), no port; the schedule runs that task
    definition on the consumer's cluster and network every 10 minutes."""
    task = load_json(RECONCILE_TASK)
    (container,) = task["containerDefinitions"]
    from producer.cli import _parser as producer_parser

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[container["command"][0]] == "producer.cli:main"
    assert producer_parser().parse_args(container["command"][1:]).command == "reconcile"
    roles = {load_json(path)["taskRoleArn"] for path in (TASK, API_TASK, WEBHOOKS_TASK)}
    assert task["taskRoleArn"].endswith(":role/campaign-reconcile-task")
    assert task["taskRoleArn"] not in roles
    assert "secrets" not in container
    assert "portMappings" not in container
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    settings_from_env(environment)
    shared = {k: v for k, v in _environment().items() if k in environment}
    assert shared == {k: v for k, v in environment.items() if k in _environment()}
    schedule = load_json(RECONCILE_SCHEDULE)
    target = schedule["Target"]["EcsParameters"]
    assert target["TaskDefinitionArn"].endswith(":task-definition/" + task["family"])
    assert schedule["Target"]["Arn"].endswith(":cluster/" + load_json(SERVICE)["cluster"])
    assert schedule["ScheduleExpression"] == "rate(10 minutes)"
    network = load_json(SERVICE)["networkConfiguration"]["awsvpcConfiguration"]
    assert target["NetworkConfiguration"]["awsvpcConfiguration"]["Subnets"] == network["subnets"]
    registered = _client(moto_server, "ecs").register_task_definition(**task)["taskDefinition"]
    assert registered["taskRoleArn"] == task["taskRoleArn"]
