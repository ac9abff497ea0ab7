"""deploy/k8s: rendered by kubectl's own kustomize, the core kinds checked by
kubernetes-validate (Kubernetes' OpenAPI schemas, strict), the KEDA and Prometheus Operator
resources by their CRD schemas (tests/deploy/schemas), and the values that must agree with
the engine (settings, ports, shutdown budget, scaling arithmetic) checked against it."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from campaigns.settings import Settings, require_operator_keys, require_webhook_secrets
from tests.deploy.support import DEPLOY, ROOT, SCHEMAS, load_yaml_documents, settings_from_env

OVERLAY = DEPLOY / "k8s" / "overlays" / "example"
BASE = DEPLOY / "k8s" / "base"
CRD_SCHEMAS = {
    "ScaledObject": "keda-scaledobject.json",
    "TriggerAuthentication": "keda-triggerauthentication.json",
    "ServiceMonitor": "servicemonitor.json",
}
# The oldest Kubernetes minor still in EKS standard support when this was written, and the
# newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
META_DEFAULT_RATE_PER_S = 80  # Meta's per-number throughput before the automatic upgrade
DRAIN_TARGET_S = 60  # the backlog one replica should own: what it sends in a minute

CONSUMER, API, WEBHOOKS = "campaign-consumer", "campaign-api", "campaign-webhooks"
RECONCILE = (
    "campaign-reconcile"  # the CronJob's own identity (ReconcilePolicyArn), not the producer's
)

Resources = list[dict[str, Any]]


def _render(kubectl: str, path: Path) -> Resources:
    done = subprocess.run(
        [kubectl, "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return load_yaml_documents(done.stdout)


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> Resources:
    return _render(kubectl, OVERLAY)


def _one(resources: Resources, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        r
        for r in resources
        if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name or ''}: found {len(found)}"
    return found[0]


def _settings_map(resources: Resources) -> dict[str, str]:
    data: dict[str, str] = _one(resources, "ConfigMap")["data"]
    return data


def _validate_core(tools_bin: Path, resources: Resources, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "core.yaml"
    core = [r for r in resources if r["kind"] not in CRD_SCHEMAS]
    path.write_text(yaml.safe_dump_all(core))
    output = ""
    for version in KUBERNETES_VERSIONS:
        done = subprocess.run(
            [str(tools_bin / "kubernetes-validate"), "--strict", "-k", version, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output += done.stdout + done.stderr
        if done.returncode != 0:
            return done.returncode, output
    return 0, output


# -- the tools --------------------------------------------------------------------------------


def test_the_base_and_the_example_overlay_render(kubectl: str, rendered: Resources) -> None:
    assert _render(kubectl, BASE)
    kinds = sorted(r["kind"] for r in rendered)
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ServiceAccount",
            "ServiceAccount",
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Deployment",
            "Deployment",
            "Service",
            "Service",
            "Service",
            "Ingress",
            "ServiceMonitor",
            "ServiceMonitor",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "TriggerAuthentication",
            "ScaledObject",
            "CronJob",
        ]
    )
    assert all(
        r["metadata"].get("namespace") == "campaigns" for r in rendered if r["kind"] != "Namespace"
    )


def test_core_kinds_pass_kubernetes_validate_strictly(
    tools_bin: Path, rendered: Resources, tmp_path: Path
) -> None:
    code, output = _validate_core(tools_bin, rendered, tmp_path)
    assert code == 0, output
    kinds = ("deployment", "cronjob", "service", "poddisruptionbudget", "configmap", "ingress")
    for kind in kinds:
        assert f"passed for resource {kind}/" in output


def test_kubernetes_validate_rejects_a_broken_deployment(
    tools_bin: Path, rendered: Resources, tmp_path: Path
) -> None:
    broken = copy.deepcopy(rendered)
    pod = _one(broken, "Deployment", CONSUMER)["spec"]["template"]["spec"]
    pod["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    code, output = _validate_core(tools_bin, broken, tmp_path)
    assert code != 0, output


@pytest.mark.parametrize("kind", sorted(CRD_SCHEMAS))
def test_custom_resources_match_their_crd_schemas(rendered: Resources, kind: str) -> None:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[kind]).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    found = [r for r in rendered if r["kind"] == kind]
    assert found
    for resource in found:
        jsonschema.Draft7Validator(schema).validate(resource)


@pytest.mark.parametrize(
    ("kind", "breakage"),
    [
        ("ScaledObject", lambda r: r["spec"].update(maxReplicaCount="4")),
        ("ScaledObject", lambda r: r["spec"]["triggers"][0]["metadata"].update(queueLength=48)),
        ("ScaledObject", lambda r: r["spec"]["triggers"][0]["metadata"].pop("awsRegion")),
        ("ScaledObject", lambda r: r["spec"]["triggers"][0]["metadata"].update(queueUrl="x")),
        ("TriggerAuthentication", lambda r: r["spec"]["podIdentity"].update(provider="eks")),
        ("ServiceMonitor", lambda r: r["spec"]["endpoints"][0].update(interval="30 seconds")),
        ("ServiceMonitor", lambda r: r["spec"].pop("selector")),
    ],
)
def test_the_crd_schemas_reject_what_the_api_server_would(
    rendered: Resources, kind: str, breakage: Callable[[dict[str, Any]], object]
) -> None:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[kind]).read_text())
    resource = copy.deepcopy(next(r for r in rendered if r["kind"] == kind))
    breakage(resource)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(resource)


# -- agreement with the engine ----------------------------------------------------------------


def test_the_settings_configmap_is_a_valid_configuration(rendered: Resources) -> None:
    data = _settings_map(rendered)
    assert "META_ACCESS_TOKEN" not in data, "the token comes from a Secret"
    settings = settings_from_env(data, META_ACCESS_TOKEN="from-the-secret")
    assert settings.aws_endpoint_url is None
    assert settings.meta_phone_number_id.isdigit()


def test_the_consumer_deployment_probes_runs_locked_down_and_outlives_its_drain(
    rendered: Resources,
) -> None:
    settings = settings_from_env(_settings_map(rendered), META_ACCESS_TOKEN="x")
    deployment = _one(rendered, "Deployment", "campaign-consumer")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout_s
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    (container,) = pod["containers"]
    assert container["command"] == ["campaign-consumer"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": settings.metrics_port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)


def test_the_access_token_is_referenced_from_a_secret_and_never_committed(
    rendered: Resources,
) -> None:
    assert not [r for r in rendered if r["kind"] == "Secret"]
    for name in (CONSUMER, API):
        container = _one(rendered, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        (token,) = [e for e in container["env"] if e["name"] == "META_ACCESS_TOKEN"]
        assert token["valueFrom"] == {
            "secretKeyRef": {"name": "campaign-executor-meta", "key": "access-token"}
        }, name
    for path in (DEPLOY / "k8s").rglob("*.yaml"):
        assert "kind: Secret" not in path.read_text(), path


def test_keda_scales_on_the_queue_with_a_backlog_derived_from_batch_size_and_rate(
    rendered: Resources,
) -> None:
    settings = settings_from_env(_settings_map(rendered), META_ACCESS_TOKEN="x")
    scaled = _one(rendered, "ScaledObject")
    spec = scaled["spec"]
    assert (
        spec["scaleTargetRef"]["name"] == _one(rendered, "Deployment", CONSUMER)["metadata"]["name"]
    )
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    metadata = trigger["metadata"]
    messages_per_s = settings.send_rate_per_second / settings.batch_size
    assert int(metadata["queueLength"]) == math.floor(messages_per_s * DRAIN_TARGET_S)
    assert metadata["scaleOnInFlight"] == "true"
    assert metadata["queueURL"].endswith("/" + settings.campaign_queue_name)
    assert metadata["awsRegion"] == settings.aws_region
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] * settings.send_rate_per_second <= META_DEFAULT_RATE_PER_S
    auth = _one(rendered, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["podIdentity"]["provider"] == "aws"


def test_each_workload_has_its_own_irsa_identity(rendered: Resources) -> None:
    roles = {
        sa["metadata"]["name"]: sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        for sa in rendered
        if sa["kind"] == "ServiceAccount"
    }
    assert set(roles) == {CONSUMER, RECONCILE, API, WEBHOOKS}
    assert len(set(roles.values())) == 4
    assert all(arn.startswith("arn:aws:iam::") and ":role/" in arn for arn in roles.values())
    consumer_pod = _one(rendered, "Deployment", CONSUMER)["spec"]["template"]["spec"]
    reconcile_pod = _one(rendered, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert consumer_pod["serviceAccountName"] == "campaign-consumer"
    assert reconcile_pod["serviceAccountName"] == RECONCILE
    api_pod = _one(rendered, "Deployment", API)["spec"]["template"]["spec"]
    assert api_pod["serviceAccountName"] == "campaign-api"
    webhooks_pod = _one(rendered, "Deployment", WEBHOOKS)["spec"]["template"]["spec"]
    assert webhooks_pod["serviceAccountName"] == "campaign-webhooks"


def test_the_reconcile_cronjob_runs_a_real_producer_command_never_twice_at_once(
    rendered: Resources,
) -> None:
    cronjob = _one(rendered, "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert container["command"][0] in scripts
    from producer.cli import _parser

    args = _parser().parse_args(container["command"][1:])
    assert args.command == "reconcile"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    config_ref = container["envFrom"][0]["configMapRef"]["name"]
    assert config_ref == _one(rendered, "ConfigMap")["metadata"]["name"]


def test_the_servicemonitor_and_the_pdb_select_the_consumer_pods(rendered: Resources) -> None:
    pod_labels = _one(rendered, "Deployment", CONSUMER)["spec"]["template"]["metadata"]["labels"]
    service = _one(rendered, "Service", "campaign-consumer-metrics")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = _one(rendered, "ServiceMonitor", CONSUMER)["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= port_names
    relabel = monitor["endpoints"][0]["relabelings"][0]
    assert (relabel["targetLabel"], relabel["replacement"]) == ("job", "campaign-consumer")
    pdb = _one(rendered, "PodDisruptionBudget", CONSUMER)["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    network = _one(rendered, "NetworkPolicy", "campaign-executor")["spec"]
    assert network["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (ingress,) = network["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["metrics"], "scrapes only"


def test_settings_in_the_configmap_are_all_known_to_the_engine(rendered: Resources) -> None:
    unknown = {k for k in _settings_map(rendered) if k.lower() not in Settings.model_fields}
    assert not unknown


# -- the operator API -------------------------------------------------------------------------


def _api_container(rendered: Resources) -> dict[str, Any]:
    (container,) = _one(rendered, "Deployment", API)["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_the_api_deployment_runs_campaign_api_on_its_port_locked_down_probed_on_healthz(
    rendered: Resources,
) -> None:
    settings = settings_from_env(_settings_map(rendered), META_ACCESS_TOKEN="x")
    deployment = _one(rendered, "Deployment", API)
    assert deployment["spec"]["replicas"] >= 2, "sessions are stateless: replicas share nothing"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout_s  # uvicorn's drain
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["automountServiceAccountToken"] is False
    container = _api_container(rendered)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[container["command"][0]] == "api.cli:main"
    from api.cli import _parser as api_parser

    args = api_parser().parse_args(container["command"][1:])
    assert args.host == "0.0.0.0"  # the pod's address: the Service and the probes reach it
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": args.port}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    size_mib = int(volume["emptyDir"]["sizeLimit"].removesuffix("Mi"))
    assert size_mib * 2**20 >= 2 * settings.api_max_upload_bytes, "room for uploads in progress"


def test_the_operator_keys_come_from_their_own_secret_and_make_a_valid_api_configuration(
    rendered: Resources,
) -> None:
    data = _settings_map(rendered)
    assert "OPERATOR_API_KEYS" not in data
    container = _api_container(rendered)
    (keys,) = [e for e in container["env"] if e["name"] == "OPERATOR_API_KEYS"]
    assert keys["valueFrom"] == {
        "secretKeyRef": {"name": "campaign-executor-api", "key": "operator-api-keys"}
    }
    assert (
        container["envFrom"][0]["configMapRef"]["name"]
        == _one(rendered, "ConfigMap")["metadata"]["name"]
    )
    settings = settings_from_env(
        data, META_ACCESS_TOKEN="from-the-secret", OPERATOR_API_KEYS="ops:from-the-secret"
    )
    assert require_operator_keys(settings) == {"ops": "from-the-secret"}


def test_the_api_is_private_a_clusterip_service_and_no_ingress(rendered: Resources) -> None:
    routes = [r for r in rendered if r["kind"] in ("Ingress", "Gateway", "HTTPRoute")]
    assert [(r["kind"], r["metadata"]["name"]) for r in routes] == [("Ingress", WEBHOOKS)]
    backends = {
        path["backend"]["service"]["name"]
        for rule in routes[0]["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {WEBHOOKS}, "no Ingress reaches the API"
    assert all(
        r["spec"].get("type", "ClusterIP") == "ClusterIP"
        for r in rendered
        if r["kind"] == "Service"
    ), "no NodePort or LoadBalancer"
    pod_labels = _one(rendered, "Deployment", API)["spec"]["template"]["metadata"]["labels"]
    service = _one(rendered, "Service", API)
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    consumer_labels = _one(rendered, "Deployment", CONSUMER)["spec"]["template"]["metadata"]
    assert not service["spec"]["selector"].items() <= consumer_labels["labels"].items()


def test_the_api_pods_take_http_keep_the_engines_egress_and_drain_one_at_a_time(
    rendered: Resources,
) -> None:
    pod_labels = _one(rendered, "Deployment", API)["spec"]["template"]["metadata"]["labels"]
    own = _one(rendered, "NetworkPolicy", API)["spec"]
    assert own["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (ingress,) = own["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["http"]
    engine = _one(rendered, "NetworkPolicy", "campaign-executor")["spec"]
    assert engine["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert {p["port"] for rule in engine["egress"] for p in rule["ports"]} == {443, 53}
    pdb = _one(rendered, "PodDisruptionBudget", API)["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["maxUnavailable"] < _one(rendered, "Deployment", API)["spec"]["replicas"]


# -- the webhook receiver ---------------------------------------------------------------------


def _webhooks_container(rendered: Resources) -> dict[str, Any]:
    pod = _one(rendered, "Deployment", WEBHOOKS)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert isinstance(container, dict)
    return container


def test_the_webhooks_deployment_runs_campaign_webhooks_on_its_ports_locked_down_and_probed(
    rendered: Resources,
) -> None:
    secrets = {"META_APP_SECRET": "from-the-secret", "META_WEBHOOK_VERIFY_TOKEN": "from-it-too"}
    settings = settings_from_env(_settings_map(rendered), META_ACCESS_TOKEN="x", **secrets)
    deployment = _one(rendered, "Deployment", WEBHOOKS)
    assert deployment["spec"]["replicas"] >= 2, "stateless: replicas share nothing"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout_s  # uvicorn's drain
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["automountServiceAccountToken"] is False
    container = _webhooks_container(rendered)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[container["command"][0]] == "webhooks.cli:main"
    from webhooks.cli import _parser as webhooks_parser

    args = webhooks_parser().parse_args(container["command"][1:])
    assert args.host == "0.0.0.0"  # the pod's address: the Service and the probes reach it
    assert (args.port, args.metrics_port) == (
        settings.webhook_port,
        settings.webhook_metrics_port,
    ), "the command and the ConfigMap agree"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": args.port, "metrics": args.metrics_port}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(args.metrics_port)


def test_the_webhook_secrets_come_from_their_own_secret_and_make_a_valid_configuration(
    rendered: Resources,
) -> None:
    data = _settings_map(rendered)
    assert not {"META_APP_SECRET", "META_WEBHOOK_VERIFY_TOKEN"} & set(data)
    env = {e["name"]: e for e in _webhooks_container(rendered)["env"]}
    assert env["META_APP_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "campaign-executor-webhooks", "key": "app-secret"}
    }
    assert env["META_WEBHOOK_VERIFY_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "campaign-executor-webhooks", "key": "verify-token"}
    }
    assert "META_ACCESS_TOKEN" not in env, "the receiver never calls Meta"
    require_webhook_secrets(
        settings_from_env(data, META_APP_SECRET="s", META_WEBHOOK_VERIFY_TOKEN="t")
    )


def test_only_the_webhook_path_is_public_and_it_reaches_only_the_receivers_http_port(
    rendered: Resources,
) -> None:
    from webhooks.app import PATH

    ingress = _one(rendered, "Ingress", WEBHOOKS)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/readyz"
    assert "defaultBackend" not in ingress["spec"]
    paths = [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [(PATH, "Exact")]
    (backend,) = [p["backend"]["service"] for p in paths]
    service = _one(rendered, "Service", backend["name"])
    (routed,) = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
    assert routed["targetPort"] == "http", "never the metrics port"
    pod_labels = _one(rendered, "Deployment", WEBHOOKS)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    for other in (CONSUMER, API):
        labels = _one(rendered, "Deployment", other)["spec"]["template"]["metadata"]["labels"]
        assert not service["spec"]["selector"].items() <= labels.items(), other


def test_the_receivers_metrics_are_scraped_as_their_own_job_its_pods_take_http_and_drain_one_by_one(
    rendered: Resources,
) -> None:
    pod_labels = _one(rendered, "Deployment", WEBHOOKS)["spec"]["template"]["metadata"]["labels"]
    service = _one(rendered, "Service", WEBHOOKS)
    monitor = _one(rendered, "ServiceMonitor", WEBHOOKS)["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    (scraped,) = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    assert scraped["targetPort"] == "metrics"
    relabel = endpoint["relabelings"][0]
    assert (relabel["targetLabel"], relabel["replacement"]) == ("job", WEBHOOKS)
    consumer_service = _one(rendered, "Service", "campaign-consumer-metrics")
    assert (
        not monitor["selector"]["matchLabels"].items()
        <= consumer_service["metadata"]["labels"].items()
    ), "one job per workload"
    own = _one(rendered, "NetworkPolicy", WEBHOOKS)["spec"]
    assert own["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (ingress,) = own["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["http"]
    engine = _one(rendered, "NetworkPolicy", "campaign-executor")["spec"]
    assert engine["podSelector"]["matchLabels"].items() <= pod_labels.items()
    pdb = _one(rendered, "PodDisruptionBudget", WEBHOOKS)["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["maxUnavailable"] < _one(rendered, "Deployment", WEBHOOKS)["spec"]["replicas"]
