"""The Kubernetes manifests agree with the code: ports, probe paths, arguments, variables, labels and hardening.

No cluster is needed. Every file under `manifests/kubernetes` is parsed, cross-checked against the other
files, and checked against the server itself: the CLI parser accepts the Deployment's arguments, the
environment the kubelet would build (ConfigMap, Secret, downward API and `$(VAR)` expansion) loads as valid
`Settings`, and the HTTP app built from those settings accepts the Host headers the Service and the Ingress
produce.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml
from mcp.server.streamable_http_manager import DEFAULT_SESSION_IDLE_TIMEOUT
from starlette.applications import Starlette
from starlette.testclient import TestClient

from person_enrich_mcp import __version__
from person_enrich_mcp.auth import create_token, parse_tokens_file
from person_enrich_mcp.cli import build_parser
from person_enrich_mcp.http_app import HEALTH_PATH, MCP_PATH, METRICS_PATH, READY_PATH, build_http_app, uvicorn_config
from person_enrich_mcp.settings import DEFAULT_BASE_URL, OPTIONS, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "manifests" / "kubernetes"
DOC = ROOT / "docs" / "deployment.md"
APP = "person-enrich-mcp"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
SERVER_PODS = {NAME_LABEL: APP, COMPONENT_LABEL: "server"}
REDIS_PODS = {NAME_LABEL: APP, COMPONENT_LABEL: "redis"}
# Templates the user edits and applies (or replaces) by hand; kustomize must never apply them.
TEMPLATES = ("secret.example.yaml", "ingress.example.yaml")
# Variables the manifests may set that are not server settings, each for a stated reason.
NOT_SETTINGS = {
    "PYTHONDONTWRITEBYTECODE": "the root filesystem is read-only",
    "POD_NAMESPACE": "expanded into PERSON_ENRICH_ALLOWED_HOSTS",
    "POD_IP": "expanded into PERSON_ENRICH_ALLOWED_HOSTS (probes and Prometheus send it as Host)",
}
POD_IP = "10.244.1.7"  # the kubelet's probes and Prometheus send the pod's address as Host
EXPECTED_KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Secret",
    "Service",
    "ServiceAccount",
    "StatefulSet",
}
NAMESPACE = "team-tools"  # any namespace: the set pins none

Manifest = dict[str, Any]


# Loading


@cache
def _documents(path: Path) -> tuple[Manifest, ...]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    return tuple(cast(Manifest, doc) for doc in docs)


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _all() -> Iterator[Manifest]:
    for path in _manifest_files():
        yield from _documents(path)


def _one(kind: str, name: str = APP) -> Manifest:
    found = [doc for doc in _all() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name!r}, found {len(found)}"
    return found[0]


def _kustomization() -> Manifest:
    return _documents(K8S / "kustomization.yaml")[0]


def _pod_spec(kind: str = "Deployment", name: str = APP) -> Manifest:
    return _one(kind, name)["spec"]["template"]["spec"]


def _container(kind: str = "Deployment", name: str = APP) -> Manifest:
    containers = _pod_spec(kind, name)["containers"]
    assert len(containers) == 1
    return containers[0]


def _named_port(container: Manifest, port: int | str) -> int:
    """A port number, resolving a named port against the container's ports."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p.get("name") == port)


def _server_port() -> int:
    ports = _container()["ports"]
    assert len(ports) == 1
    return ports[0]["containerPort"]


def _redis_port() -> int:
    return _container("StatefulSet", f"{APP}-redis")["ports"][0]["containerPort"]


def _pod_containers() -> Iterator[tuple[Manifest, Manifest]]:
    for doc in _all():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            spec = doc["spec"]["template"]["spec"]
            for container in spec["containers"]:
                yield spec, container


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: earlier variables only, `$$` escapes, unknown references left as is."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return defined.get(name, match.group(0))

    return _REFERENCE.sub(replace, value)


def _pod_environment(namespace: str = NAMESPACE) -> dict[str, str]:
    """The server container's environment as the kubelet builds it: envFrom first, then env, in order."""
    container = _container()
    config = _one("ConfigMap")["data"]
    secret = _one("Secret")["stringData"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == APP
            env.update(config)
        else:
            assert source["secretRef"]["name"] == APP
            env.update(secret)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = _expand(str(var["value"]), env)
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            env[var["name"]] = secret[ref["secretKeyRef"]["key"]]
        elif "configMapKeyRef" in ref:
            env[var["name"]] = config[ref["configMapKeyRef"]["key"]]
        else:
            field = ref["fieldRef"]["fieldPath"]
            assert field in ("metadata.namespace", "status.podIP"), field
            env[var["name"]] = namespace if field == "metadata.namespace" else POD_IP
    return env


def _set_variables() -> set[str]:
    """Every variable name any manifest sets, directly or through the ConfigMap."""
    names = set(_one("ConfigMap")["data"])
    for _, container in _pod_containers():
        names.update(var["name"] for var in container.get("env", []))
    return names


def _settings(namespace: str = NAMESPACE, **flags: Any) -> Settings:
    return load_settings(flags, environ=_pod_environment(namespace))


def _server_args() -> Any:
    return build_parser().parse_args(_container()["args"])


# The set as a whole


def test_every_manifest_parses_and_every_expected_kind_is_present() -> None:
    kinds: set[str] = set()
    for path in _manifest_files():
        docs = _documents(path)
        assert docs, f"{path.name} holds no document"
        for doc in docs:
            assert doc.get("apiVersion"), f"{path.name}: a document without apiVersion"
            assert doc["metadata"]["name"], f"{path.name}: a document without a name"
            kinds.add(doc["kind"])
    assert kinds == EXPECTED_KINDS


def test_the_kustomization_lists_every_manifest_except_the_hand_applied_templates() -> None:
    kustomization = _kustomization()
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    expected = {p.name for p in _manifest_files()} - set(TEMPLATES)
    assert set(listed) == expected
    # Applying the Secret template would overwrite the real key with a placeholder.
    assert not set(listed) & set(TEMPLATES)
    assert all((K8S / name).is_file() for name in TEMPLATES)


def test_no_manifest_pins_a_namespace_so_the_set_applies_to_any() -> None:
    assert "namespace" not in _kustomization()
    pinned = [f"{doc['kind']}/{doc['metadata']['name']}" for doc in _all() if "namespace" in doc["metadata"]]
    assert pinned == []


def test_every_object_carries_the_app_name_and_a_component_label() -> None:
    for doc in _all():
        labels = doc["metadata"]["labels"]
        assert labels[NAME_LABEL] == APP, doc["metadata"]["name"]
        assert labels[COMPONENT_LABEL] in ("server", "redis"), doc["metadata"]["name"]


def test_the_image_tag_is_the_package_version() -> None:
    image = _container()["image"]
    assert image == f"{APP}:{__version__}"
    (override,) = [i for i in _kustomization()["images"] if i["name"] == APP]
    assert override["newTag"] == __version__


# Labels and selectors


def test_the_service_pdb_hpa_and_network_policy_all_select_the_deployment_pods() -> None:
    deployment = _one("Deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == SERVER_PODS
    assert deployment["spec"]["template"]["metadata"]["labels"] == SERVER_PODS
    assert _one("Service")["spec"]["selector"] == SERVER_PODS
    assert _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == SERVER_PODS
    assert _one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == SERVER_PODS
    target = _one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", APP)
    for constraint in _pod_spec()["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"] == SERVER_PODS
    assert _pod_spec()["serviceAccountName"] == _one("ServiceAccount")["metadata"]["name"]


def test_the_redis_services_and_policies_select_the_redis_pods_and_only_the_server_reaches_them() -> None:
    redis = _one("StatefulSet", f"{APP}-redis")
    assert redis["spec"]["selector"]["matchLabels"] == REDIS_PODS
    assert redis["spec"]["template"]["metadata"]["labels"] == REDIS_PODS
    assert _one("Service", f"{APP}-redis")["spec"]["selector"] == REDIS_PODS
    headless = _one("Service", redis["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == REDIS_PODS
    policy = _one("NetworkPolicy", f"{APP}-redis")
    assert policy["spec"]["podSelector"]["matchLabels"] == REDIS_PODS
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": SERVER_PODS}}]


# Ports, probes and arguments against the code


def test_the_container_port_is_the_cli_default_port_and_the_service_target() -> None:
    default_port = build_parser().parse_args([]).port
    container = _container()
    assert _server_port() == default_port == _server_args().port
    assert container["ports"][0]["name"] == "http"
    (port,) = _one("Service")["spec"]["ports"]
    assert _named_port(container, port["targetPort"]) == default_port
    assert port["port"] == default_port


def test_the_probes_use_the_http_apps_liveness_and_readiness_paths_on_the_container_port() -> None:
    container = _container()
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["startupProbe"]["path"] == HEALTH_PATH
    assert probes["livenessProbe"]["path"] == HEALTH_PATH
    assert probes["readinessProbe"]["path"] == READY_PATH
    for probe in probes.values():
        assert _named_port(container, probe["port"]) == _server_port()


def test_prometheus_is_told_to_scrape_the_metrics_endpoint_on_the_container_port() -> None:
    annotations = _one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert int(annotations["prometheus.io/port"]) == _server_port()


def test_the_deployment_args_are_accepted_by_the_cli_and_serve_http_on_every_interface() -> None:
    args = _server_args()
    assert args.transport == "http"
    assert args.host == "0.0.0.0"
    assert args.command is None
    assert not args.sandbox
    assert args.allow_unauthenticated is None


def test_the_deployment_relies_on_the_images_entrypoint_and_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf'^ENTRYPOINT \["{APP}"\]\s*$', dockerfile, re.MULTILINE)
    user = re.findall(r"^USER (\d+):(\d+)\s*$", dockerfile, re.MULTILINE)[-1]
    assert "command" not in _container()
    context = _pod_spec()["securityContext"]
    assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user


# Environment


def test_every_variable_the_manifests_set_is_a_server_setting_or_explicitly_allowed() -> None:
    settings_env = {option.env for option in OPTIONS}
    unknown = _set_variables() - settings_env - set(NOT_SETTINGS)
    assert unknown == set()
    assert _container()["env"][0] == {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}


def test_unauthenticated_http_is_never_enabled() -> None:
    assert "PERSON_ENRICH_ALLOW_UNAUTHENTICATED" not in _set_variables()
    assert "--allow-unauthenticated" not in _container()["args"]


def test_the_api_key_comes_from_the_secret_and_is_never_a_literal() -> None:
    secret = _one("Secret")
    (var,) = [v for v in _container()["env"] if v["name"] == "CRUSTDATA_API_KEY"]
    assert "value" not in var
    ref = var["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["stringData"]
    assert "CRUSTDATA_API_KEY" not in _one("ConfigMap")["data"]


def test_the_tokens_file_is_a_file_inside_a_read_only_secret_mount() -> None:
    container = _container()
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    tokens_file = Path(_pod_environment()["PERSON_ENRICH_TOKENS_FILE"])
    (mount,) = [m for m in container["volumeMounts"] if tokens_file.parent == Path(m["mountPath"])]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
    source = volumes[mount["name"]]["secret"]
    assert source["secretName"] == _one("Secret")["metadata"]["name"]
    assert {item["path"]: item["key"] for item in source["items"]} == {tokens_file.name: "tokens"}
    assert source["defaultMode"] == 0o440
    assert _pod_spec()["securityContext"]["fsGroup"] == _pod_spec()["securityContext"]["runAsGroup"]


def test_the_state_url_names_the_redis_service_and_its_port() -> None:
    url = urlsplit(str(_one("ConfigMap")["data"]["PERSON_ENRICH_STATE_URL"]))
    assert url.scheme == "redis"
    service = _one("Service", url.hostname or "")
    assert service["spec"]["selector"] == REDIS_PODS
    (port,) = service["spec"]["ports"]
    assert url.port == port["port"]
    assert _named_port(_container("StatefulSet", f"{APP}-redis"), port["targetPort"]) == _redis_port()
    assert url.path == "/0"


def test_the_pod_environment_loads_as_valid_settings_for_a_multi_replica_deployment() -> None:
    settings = _settings()
    config = _one("ConfigMap")["data"]
    assert settings.state_url == config["PERSON_ENRICH_STATE_URL"]
    assert settings.tokens_file == "/run/secrets/person-enrich-mcp/tokens"
    assert settings.api_key is not None
    assert settings.session_budget == int(config["PERSON_ENRICH_SESSION_BUDGET"])
    assert settings.principal_budget == int(config["PERSON_ENRICH_PRINCIPAL_BUDGET"])
    assert settings.principal_window_seconds == float(config["PERSON_ENRICH_PRINCIPAL_WINDOW"])
    assert settings.enrich_rpm == int(config["PERSON_ENRICH_ENRICH_RPM"])
    assert settings.search_rpm == int(config["PERSON_ENRICH_SEARCH_RPM"])
    assert not settings.allow_unauthenticated
    assert all(isinstance(value, str) for value in config.values()), "ConfigMap values must be strings"


def test_the_host_allowlist_holds_the_ingress_host_and_the_services_names_in_the_pods_namespace() -> None:
    for namespace in (NAMESPACE, "default"):
        hosts = set(_settings(namespace).allowed_hosts)
        service = f"{APP}.{namespace}"
        assert {APP, service, f"{service}.svc", f"{service}.svc.cluster.local"} <= hosts
        assert "mcp.example.com" in hosts
        assert not [h for h in hosts if "$(" in h], "an unresolved $(VAR) reference"


def test_the_server_accepts_the_service_and_ingress_hosts_and_probes_from_a_pod_ip(tmp_path: Path) -> None:
    token, line = create_token("ci")
    tokens = tmp_path / "tokens"
    tokens.write_text(line + "\n", encoding="utf-8")
    args = _server_args()
    app = build_http_app(_settings(tokens_file=str(tokens)), host=args.host, port=args.port)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "k8s", "version": "1"}},
    }
    mcp_headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    service = f"{APP}.{NAMESPACE}.svc.cluster.local"
    pod_ip = f"{POD_IP}:8000"
    with TestClient(app) as client:
        for host in (f"{APP}:8000", f"{service}:8000", "mcp.example.com", pod_ip):
            response = client.post(MCP_PATH, json=initialize, headers={**mcp_headers, "Host": host})
            assert response.status_code == 200, host
        assert client.get(HEALTH_PATH, headers={"Host": pod_ip}).status_code == 200
        assert client.get(METRICS_PATH, headers={"Host": pod_ip}).status_code == 200
        for path in (MCP_PATH, HEALTH_PATH, METRICS_PATH):  # the allowlist guards every route
            assert client.get(path, headers={"Host": "10.244.9.9:8000"}).status_code == 421, path


def test_the_public_url_is_on_an_allowed_host() -> None:
    settings = _settings()
    assert settings.public_url is not None
    url = urlsplit(settings.public_url)
    assert url.scheme == "https"
    assert url.path == MCP_PATH
    assert url.hostname in settings.allowed_hosts


def test_a_reservation_outlives_the_longest_single_upstream_request() -> None:
    settings = _settings()
    retries = settings.max_retries + 1
    longest = settings.max_wait_seconds + retries * settings.request_timeout + retries * settings.retry_max_delay
    assert settings.reservation_ttl_seconds > 2 * longest


# The Secret template


def test_the_secret_template_holds_obvious_placeholders_and_its_tokens_file_authenticates_nobody() -> None:
    data = _one("Secret")["stringData"]
    for value in data.values():
        assert "REPLACE" in value
        assert not re.search(r"[A-Za-z0-9]{20,}", value), "a placeholder must not look like a key"
    assert parse_tokens_file(data["tokens"]) == []
    assert "data" not in _one("Secret")


def test_the_secret_template_provides_every_key_the_deployment_reads() -> None:
    secret = _one("Secret")
    read: set[str] = set()
    for var in _container()["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == secret["metadata"]["name"]
            read.add(ref["key"])
    for volume in _pod_spec()["volumes"]:
        if "secret" in volume:
            read.update(item["key"] for item in volume["secret"]["items"])
    assert read == set(secret["stringData"])


# Hardening, resources and availability


@pytest.mark.parametrize("kind,name", [("Deployment", APP), ("StatefulSet", f"{APP}-redis")])
def test_pods_run_as_non_root_with_a_read_only_root_and_no_capabilities(kind: str, name: str) -> None:
    spec = _pod_spec(kind, name)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] > 0
    assert pod["runAsGroup"] > 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    container = _container(kind, name)
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    tmp = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp, "a read-only root needs a writable /tmp"
    assert "emptyDir" in {v["name"]: v for v in spec["volumes"]}[tmp[0]]


def test_every_container_has_resource_requests_and_limits() -> None:
    for _, container in _pod_containers():
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]


def test_at_least_two_replicas_run_and_the_autoscaler_never_goes_below() -> None:
    assert _one("Deployment")["spec"]["replicas"] >= 2
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert _one("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_disruption_budget_keeps_one_pod_and_can_still_drain_a_node() -> None:
    pdb = _one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["minAvailable"] < _one("HorizontalPodAutoscaler")["spec"]["minReplicas"]


def test_pods_spread_across_nodes_and_zones() -> None:
    keys = {c["topologyKey"] for c in _pod_spec()["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


def test_the_grace_period_outlasts_the_pre_stop_pause_and_the_servers_graceful_shutdown() -> None:
    graceful = uvicorn_config(Starlette(), _settings()).timeout_graceful_shutdown  # the config `serve` runs
    assert graceful is not None and graceful > 0
    pause = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert _pod_spec()["terminationGracePeriodSeconds"] > int(pause[1]) + graceful


def test_legacy_sessions_stay_on_one_replica_for_at_least_the_sdks_idle_timeout() -> None:
    spec = _one("Service")["spec"]
    assert spec["sessionAffinity"] == "ClientIP"
    assert spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= DEFAULT_SESSION_IDLE_TIMEOUT


# Network policy


def test_the_server_policy_opens_exactly_the_container_port_to_labelled_clients() -> None:
    spec = _one("NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    for rule in spec["ingress"]:
        assert [(_named_port(_container(), p["port"]), p["protocol"]) for p in rule["ports"]] == [
            (_server_port(), "TCP")
        ]
        for peer in rule["from"]:
            assert "ipBlock" not in peer
            selector = peer.get("podSelector") or peer["namespaceSelector"]
            assert selector["matchLabels"] == {f"{APP}/client": "true"}


OTLP_HTTP_PORT = 4318  # an OpenTelemetry Collector's OTLP/HTTP receiver


def test_the_server_may_only_reach_redis_dns_a_labelled_otel_collector_and_the_upstream_over_https() -> None:
    egress = _one("NetworkPolicy")["spec"]["egress"]
    ports = {(p["port"], p["protocol"]) for rule in egress for p in rule["ports"]}
    upstream_port = urlsplit(DEFAULT_BASE_URL).port or 443
    assert ports == {(_redis_port(), "TCP"), (53, "UDP"), (53, "TCP"), (upstream_port, "TCP"), (OTLP_HTTP_PORT, "TCP")}
    (collector_rule,) = [r for r in egress if r["ports"][0]["port"] == OTLP_HTTP_PORT]
    assert collector_rule["to"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"person-enrich-mcp/otel-collector": "true"}}}
    ]
    (redis_rule,) = [r for r in egress if r["ports"][0]["port"] == _redis_port()]
    assert redis_rule["to"] == [{"podSelector": {"matchLabels": REDIS_PODS}}]
    (https_rule,) = [r for r in egress if r["ports"][0]["port"] == upstream_port]
    (peer,) = https_rule["to"]
    closed = {ipaddress.ip_network(cidr) for cidr in peer["ipBlock"]["except"]}
    assert ipaddress.ip_network("169.254.0.0/16") in closed, "the cloud metadata address stays closed"
    assert ipaddress.ip_network("10.0.0.0/8") in closed


def test_the_redis_policy_opens_exactly_the_redis_port_and_no_egress() -> None:
    spec = _one("NetworkPolicy", f"{APP}-redis")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    redis = _container("StatefulSet", f"{APP}-redis")
    assert [(_named_port(redis, p["port"]), p["protocol"]) for p in rule["ports"]] == [(_redis_port(), "TCP")]
    assert spec["egress"] == []


# Redis


def test_redis_is_one_non_clustered_instance_that_persists_with_an_append_only_file() -> None:
    redis = _one("StatefulSet", f"{APP}-redis")
    assert redis["spec"]["replicas"] == 1
    container = _container("StatefulSet", f"{APP}-redis")
    assert container["image"].startswith("redis:7")
    args = container["args"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert args[0] == "redis-server"
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction", "evicting a key could forget spend"
    assert "--cluster-enabled" not in options
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    (data,) = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert data["mountPath"] == options["--dir"]
    probes = {kind: container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert "ping" in " ".join(probes["readinessProbe"]["exec"]["command"])


# The Ingress example and the deployment guide


def test_the_ingress_example_routes_only_mcp_and_its_metadata_to_the_service_on_an_allowed_host() -> None:
    ingress = _one("Ingress")["spec"]
    settings = _settings()
    (rule,) = ingress["rules"]
    assert rule["host"] in settings.allowed_hosts
    assert rule["host"] == urlsplit(settings.public_url or "").hostname
    assert [rule["host"]] == ingress["tls"][0]["hosts"]
    paths = rule["http"]["paths"]
    assert {p["path"] for p in paths} == {MCP_PATH, f"/.well-known/oauth-protected-resource{MCP_PATH}"}
    for internal in (HEALTH_PATH, READY_PATH, METRICS_PATH):
        assert not [p for p in paths if internal.startswith(p["path"])], f"{internal} must stay in the cluster"
    for path in paths:
        backend = path["backend"]["service"]
        assert backend["name"] == APP
        assert backend["port"]["name"] == _one("Service")["spec"]["ports"][0]["name"]


def test_the_deployment_guide_names_only_real_settings_and_the_kustomize_command() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"\b(?:PERSON_ENRICH|CRUSTDATA)_[A-Z_]+\b", text))
    assert named - {option.env for option in OPTIONS} == set()
    assert "kubectl apply -k manifests/kubernetes" in text
    assert "person-enrich-mcp token create" in text
