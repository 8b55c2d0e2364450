"""Who may connect to what the chart starts, as Helm renders it: NetworkPolicies around
Triton (no authentication of its own), the data stores and the gateway; the optional ways in
from outside (Ingress, HTTPRoute) with the gateway's limits; the gateway's own connection
limits, allowed Host names and separate metrics port; and the values schema for all of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helm.conftest import (
    Lint,
    Manifests,
    Render,
    chart_with_values,
    errors,
    helm_lint,
)
from tests.helm.test_rendered_chart import container, env, pod, selects, tritons

RELEASE = "test-release"  # the release name of Helm's lint
NAMESPACE = "default"  # and its namespace
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
ENABLED_INGRESS = {"enabled": True, "hosts": ["llm.example.com"]}
ENABLED_ROUTE = {
    "enabled": True,
    "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
    "hostnames": ["llm-route.example.com"],
}
NGINX = "nginx.ingress.kubernetes.io/"


# Reading NetworkPolicies


def labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def component(workload: dict[str, Any]) -> str:
    return labels(workload)["app.kubernetes.io/component"]


def matches(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against pod labels."""
    if any(pod_labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        has = key in pod_labels
        listed = has and pod_labels[key] in expression.get("values", [])
        found = {"In": listed, "NotIn": not listed, "Exists": has, "DoesNotExist": not has}
        if not found[operator]:
            return False
    return True


def workloads(manifests: Manifests) -> list[dict[str, Any]]:
    """Everything of the release that runs pods."""
    return [item for item in manifests if item["kind"] in {"Deployment", "StatefulSet", "Job"}]


def listening(workload: dict[str, Any]) -> dict[str, int]:
    """Container ports of a workload's pods, by name."""
    return {
        port["name"]: port["containerPort"]
        for server in pod(workload)["containers"]
        for port in server.get("ports", [])
    }


def guarding(manifests: Manifests, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """The NetworkPolicies whose ingress rules apply to a workload's pods."""
    return [
        policy
        for policy in manifests.of_kind("NetworkPolicy")
        if matches(policy["spec"]["podSelector"], labels(workload))
        and "Ingress" in policy["spec"]["policyTypes"]
    ]


def allowed_from(
    manifests: Manifests, workload: dict[str, Any], port: int
) -> list[dict[str, Any]] | None:
    """The peers a workload's pods accept on a TCP port; None: anyone (no rule restricts it)."""
    policies = guarding(manifests, workload)
    if not policies:
        return None
    peers: list[dict[str, Any]] = []
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is not None and not any(
                p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports
            ):
                continue
            if not rule.get("from"):
                return None
            peers += rule["from"]
    return peers


def release_pods_admitted(manifests: Manifests, peers: list[dict[str, Any]]) -> set[str]:
    """The components of the release's pods that peers admit. Each peer must be pods of this
    release in its namespace: no namespaceSelector, no ipBlock, and a selector that another
    release's pods with the same component would not pass."""
    admitted = set()
    for peer in peers:
        assert set(peer) == {"podSelector"}, peer
        for workload in workloads(manifests):
            if matches(peer["podSelector"], labels(workload)):
                other_release = {**labels(workload), "app.kubernetes.io/instance": "another"}
                assert not matches(peer["podSelector"], other_release), peer
                admitted.add(component(workload))
    return admitted


def scraper(
    namespace_selector: dict[str, Any] | None = None, pod_selector: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    peer: dict[str, Any] = {"podSelector": pod_selector or {}}
    if namespace_selector is not None:
        peer["namespaceSelector"] = namespace_selector
    return [peer]


def one(manifests: Manifests, wanted: str) -> dict[str, Any]:
    [workload] = [w for w in workloads(manifests) if component(w) == wanted]
    return workload


# NetworkPolicies: Triton


@pytest.mark.parametrize("values", ["defaults", "everything"])
def test_only_the_gateway_pods_reach_tritons_http_and_grpc_ports(
    values: str, request: pytest.FixtureRequest
) -> None:
    """Triton checks no credentials: whoever reaches 8000/8001 generates (and loads and
    unloads models) past the gateway's authentication, limits and billing."""
    manifests: Manifests = request.getfixturevalue(values)
    assert tritons(manifests)
    for triton in tritons(manifests):
        ports = listening(triton)
        for name in ("http", "grpc"):
            peers = allowed_from(manifests, triton, ports[name])
            assert peers is not None, f"{name} is open to anyone"
            assert release_pods_admitted(manifests, peers) == {"gateway"}


@pytest.mark.parametrize("values", ["defaults", "everything"])
def test_only_the_metrics_scraper_reaches_the_metrics_ports(
    values: str, request: pytest.FixtureRequest
) -> None:
    manifests: Manifests = request.getfixturevalue(values)
    scraped = [*tritons(manifests), manifests.named("Deployment", "-gateway")]
    for workload in scraped:
        peers = allowed_from(manifests, workload, listening(workload)["metrics"])
        assert peers is not None
        [peer] = peers
        assert peer["namespaceSelector"] == {"matchLabels": MONITORING}


def test_by_default_the_scraper_is_any_pod_of_the_monitoring_namespace(
    defaults: Manifests,
) -> None:
    for workload in [*tritons(defaults), defaults.named("Deployment", "-gateway")]:
        peers = allowed_from(defaults, workload, listening(workload)["metrics"])
        assert peers == scraper({"matchLabels": MONITORING})


def test_the_scraper_is_chosen_by_its_namespace_and_pod_selectors(render: Render) -> None:
    namespaces = {"matchLabels": {"team": "observability"}}
    pods = {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    chosen = {"namespaceSelector": namespaces, "podSelector": pods}
    manifests = render({"networkPolicy": {"metricsScraper": chosen}})
    for workload in [*tritons(manifests), manifests.named("Deployment", "-gateway")]:
        peers = allowed_from(manifests, workload, listening(workload)["metrics"])
        assert peers == scraper(namespaces, pods)


def test_the_scrapers_namespace_is_named_by_its_name_label(render: Render) -> None:
    manifests = render({"networkPolicy": {"metricsScraper": {"namespace": "observability"}}})
    namespace = {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}
    for workload in [*tritons(manifests), manifests.named("Deployment", "-gateway")]:
        peers = allowed_from(manifests, workload, listening(workload)["metrics"])
        assert peers == scraper(namespace)


def test_a_scraper_without_a_namespace_is_in_the_releases_namespace(render: Render) -> None:
    pods = {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    chosen = {"namespace": "", "podSelector": pods}
    manifests = render({"networkPolicy": {"metricsScraper": chosen}})
    for triton in tritons(manifests):
        assert allowed_from(manifests, triton, listening(triton)["metrics"]) == scraper(None, pods)


def test_the_gateway_reaches_the_triton_pods_of_every_catalog_model(
    everything: Manifests,
) -> None:
    """The catalog points at each model's headless Service (gRPC): those pods admit it."""
    catalog = everything.named("ConfigMap", "-catalog")["data"]["catalog.json"]
    targets = re.findall(r"dns:///([^.]+)\.[^.]+\.svc:(\d+)", catalog)
    assert len(targets) == len(tritons(everything)) == 3
    for service_name, port in targets:
        service = everything.named("Service", service_name)
        [triton] = [t for t in tritons(everything) if selects(service["spec"]["selector"], t)]
        [target] = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
        peers = allowed_from(everything, triton, listening(triton)[target["targetPort"]])
        assert peers is not None
        assert "gateway" in release_pods_admitted(everything, peers)


# NetworkPolicies: the data stores


def test_the_bundled_postgresql_admits_only_the_gateway_and_the_migrations(
    defaults: Manifests,
) -> None:
    postgresql = one(defaults, "postgresql")
    peers = allowed_from(defaults, postgresql, listening(postgresql)["postgresql"])
    assert peers is not None
    assert release_pods_admitted(defaults, peers) == {"gateway", "migrations"}


def test_the_bundled_redis_admits_only_the_gateway(defaults: Manifests) -> None:
    redis = one(defaults, "redis")
    peers = allowed_from(defaults, redis, listening(redis)["redis"])
    assert peers is not None
    assert release_pods_admitted(defaults, peers) == {"gateway"}


def test_every_pod_given_a_data_stores_address_may_connect_to_it(defaults: Manifests) -> None:
    """DATABASE_URL and REDIS_URL name a Service and port: the pods behind it admit the
    pods that were given them (the gateway, and the migrations for the database)."""
    checked = set()
    for store in ("postgresql", "redis"):
        service = defaults.named("Service", f"-{store}")
        [port] = service["spec"]["ports"]
        address = f"{service['metadata']['name']}:{port['port']}"
        target = one(defaults, store)
        peers = allowed_from(defaults, target, listening(target)[port["targetPort"]])
        assert peers is not None
        admitted = release_pods_admitted(defaults, peers)
        for workload in workloads(defaults):
            variables = [
                variable.get("value", "")
                for server in pod(workload)["containers"] + pod(workload).get("initContainers", [])
                for variable in server.get("env", [])
            ]
            if any(address in value for value in variables):
                assert component(workload) in admitted, (component(workload), store)
                checked.add((component(workload), store))
    assert checked == {
        ("gateway", "postgresql"),
        ("migrations", "postgresql"),
        ("gateway", "redis"),
    }


def test_external_data_stores_get_no_policies_and_each_policy_guards_a_pod(
    defaults: Manifests, external: Manifests
) -> None:
    for manifests in (defaults, external):
        for policy in manifests.of_kind("NetworkPolicy"):
            assert any(
                matches(policy["spec"]["podSelector"], labels(w)) for w in workloads(manifests)
            ), policy["metadata"]["name"]
    names = sorted(p["metadata"]["name"] for p in external.of_kind("NetworkPolicy"))
    assert names == [f"{RELEASE}-llm-gateway-gateway", f"{RELEASE}-llm-gateway-triton"]


# NetworkPolicies: the gateway


def test_the_gateway_api_port_is_open_and_its_metrics_port_is_not(defaults: Manifests) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    ports = listening(gateway)
    assert guarding(defaults, gateway)
    assert allowed_from(defaults, gateway, ports["http"]) is None
    assert allowed_from(defaults, gateway, ports["metrics"]) == scraper({"matchLabels": MONITORING})


def test_the_gateway_api_port_admits_only_api_from_when_given(render: Render) -> None:
    ingress_controller = [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}]
    manifests = render({"networkPolicy": {"gateway": {"apiFrom": ingress_controller}}})
    gateway = manifests.named("Deployment", "-gateway")
    assert allowed_from(manifests, gateway, listening(gateway)["http"]) == ingress_controller


def test_the_policies_restrict_only_what_reaches_the_pods(defaults: Manifests) -> None:
    """Egress stays open: DNS, the database, Triton and Redis are reached as before."""
    policies = defaults.of_kind("NetworkPolicy")
    assert len(policies) == 4
    assert all(policy["spec"]["policyTypes"] == ["Ingress"] for policy in policies)


def test_network_policies_can_be_turned_off(render: Render) -> None:
    assert render({"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []


# Ways in from outside the cluster


def test_the_ingress_is_off_by_default_and_routes_each_host_to_the_gateway_api_port(
    defaults: Manifests, render: Render
) -> None:
    assert defaults.of_kind("Ingress") == []
    hosts = ["llm.example.com", "api.example.com"]
    tls = [{"secretName": "llm-tls", "hosts": hosts}]
    ingress_values = {**ENABLED_INGRESS, "hosts": hosts, "tls": tls, "className": "public"}
    manifests = render({"ingress": ingress_values})
    [ingress] = manifests.of_kind("Ingress")
    service = manifests.named("Service", "-gateway")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"]["ingressClassName"] == "public"
    assert ingress["spec"]["tls"] == tls
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == hosts
    for rule in ingress["spec"]["rules"]:
        [path] = rule["http"]["paths"]
        assert (path["path"], path["pathType"]) == ("/", "Prefix")
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        [port] = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
        assert port["targetPort"] == "http"


def test_the_ingress_carries_the_gateways_limits_for_ingress_nginx(render: Render) -> None:
    limits = {"timeoutSeconds": 900, "connectionsPerAddress": 16, "requestsPerSecondPerAddress": 5}
    manifests = render(
        {
            "gateway": {"maxBodyBytes": 4 * 1024 * 1024},
            "ingress": {**ENABLED_INGRESS, "nginx": limits},
        }
    )
    annotations = manifests.named("Ingress", "-gateway")["metadata"]["annotations"]
    gateway = manifests.named("Deployment", "-gateway")
    assert env(gateway, "GATEWAY_MAX_BODY_BYTES")["value"] == str(4 * 1024 * 1024)
    assert annotations[NGINX + "proxy-body-size"] == str(4 * 1024 * 1024)
    assert annotations[NGINX + "proxy-buffering"] == "off"  # each token goes out at once
    assert annotations[NGINX + "proxy-read-timeout"] == "900"
    assert annotations[NGINX + "proxy-send-timeout"] == "900"
    assert annotations[NGINX + "limit-connections"] == "16"
    assert annotations[NGINX + "limit-rps"] == "5"


def test_the_default_ingress_limits_outlast_a_silent_stream(render: Render) -> None:
    manifests = render({"ingress": ENABLED_INGRESS})
    annotations = manifests.named("Ingress", "-gateway")["metadata"]["annotations"]
    gateway = manifests.named("Deployment", "-gateway")
    keepalive = float(env(gateway, "GATEWAY_SSE_KEEPALIVE_SECONDS")["value"])
    assert float(annotations[NGINX + "proxy-read-timeout"]) > 10 * keepalive
    body = env(gateway, "GATEWAY_MAX_BODY_BYTES")["value"]
    assert annotations[NGINX + "proxy-body-size"] == body == "1048576"
    assert int(annotations[NGINX + "limit-connections"]) > 0
    assert int(annotations[NGINX + "limit-rps"]) > 0


def test_ingress_annotations_from_values_are_added_and_win(render: Render) -> None:
    given = {NGINX + "limit-rps": "2", "cert-manager.io/cluster-issuer": "letsencrypt"}
    manifests = render({"ingress": {**ENABLED_INGRESS, "annotations": given}})
    annotations = manifests.named("Ingress", "-gateway")["metadata"]["annotations"]
    assert annotations[NGINX + "limit-rps"] == "2"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert annotations[NGINX + "proxy-buffering"] == "off"


def test_without_the_nginx_limits_an_ingress_has_only_the_given_annotations(
    render: Render,
) -> None:
    given = {"traefik.ingress.kubernetes.io/router.entrypoints": "websecure"}
    ingress_values = {**ENABLED_INGRESS, "nginx": {"enabled": False}, "annotations": given}
    manifests = render({"ingress": ingress_values})
    assert manifests.named("Ingress", "-gateway")["metadata"]["annotations"] == given


def test_zero_per_address_limits_leave_their_annotations_out(render: Render) -> None:
    limits = {"connectionsPerAddress": 0, "requestsPerSecondPerAddress": 0}
    manifests = render({"ingress": {**ENABLED_INGRESS, "nginx": limits}})
    annotations = manifests.named("Ingress", "-gateway")["metadata"]["annotations"]
    assert NGINX + "limit-connections" not in annotations
    assert NGINX + "limit-rps" not in annotations


def test_the_http_route_is_off_by_default_and_sends_its_hostnames_to_the_gateway(
    defaults: Manifests, render: Render
) -> None:
    assert defaults.of_kind("HTTPRoute") == []
    manifests = render({"httpRoute": ENABLED_ROUTE})
    [route] = manifests.of_kind("HTTPRoute")
    service = manifests.named("Service", "-gateway")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == ENABLED_ROUTE["parentRefs"]
    assert route["spec"]["hostnames"] == ENABLED_ROUTE["hostnames"]
    [rule] = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    [backend] = rule["backendRefs"]
    assert backend["name"] == service["metadata"]["name"]
    [port] = [p for p in service["spec"]["ports"] if p["port"] == backend["port"]]
    assert port["targetPort"] == "http"
    assert rule["timeouts"] == {"request": "0s"}  # a stream lasts as long as its generation


def test_the_http_route_timeouts_come_from_values(render: Render) -> None:
    timeouts = {"request": "15m", "backendRequest": "10m"}
    manifests = render({"httpRoute": {**ENABLED_ROUTE, "timeouts": timeouts}})
    [rule] = manifests.named("HTTPRoute", "-gateway")["spec"]["rules"]
    assert rule["timeouts"] == timeouts


# The gateway's allowed Host names


def allowed_hosts(manifests: Manifests) -> list[str]:
    gateway = manifests.named("Deployment", "-gateway")
    return env(gateway, "GATEWAY_ALLOWED_HOSTS")["value"].split(",")  # type: ignore[no-any-return]


def service_names(manifests: Manifests) -> list[str]:
    service = manifests.named("Service", "-gateway")["metadata"]["name"]
    return [
        service,
        f"{service}.{NAMESPACE}",
        f"{service}.{NAMESPACE}.svc",
        f"{service}.{NAMESPACE}.svc.cluster.local",
    ]


def test_the_admin_api_answers_the_gateway_service_names_and_loopback_by_default(
    defaults: Manifests,
) -> None:
    assert allowed_hosts(defaults) == [*service_names(defaults), "localhost", "127.0.0.1", "[::1]"]


def test_the_ingress_and_route_hosts_and_given_names_are_allowed_hosts(render: Render) -> None:
    manifests = render(
        {
            "gateway": {"allowedHosts": ["llm-lb.example.com"]},
            "ingress": {**ENABLED_INGRESS, "hosts": ["llm.example.com", "api.example.com"]},
            "httpRoute": ENABLED_ROUTE,
        }
    )
    hosts = allowed_hosts(manifests)
    assert set(service_names(manifests)) | {"localhost", "127.0.0.1"} <= set(hosts)
    extra = ["llm.example.com", "api.example.com", "llm-route.example.com", "llm-lb.example.com"]
    assert set(extra) <= set(hosts)
    assert len(hosts) == len(set(hosts))
    assert all(":" not in host.strip("[]") or host.startswith("[") for host in hosts)


def test_disabled_ingress_hosts_are_not_allowed_hosts(render: Render) -> None:
    manifests = render({"ingress": {"enabled": False, "hosts": ["llm.example.com"]}})
    assert "llm.example.com" not in allowed_hosts(manifests)


# The gateway's own limits and metrics port


def test_the_gateways_connection_limits_have_the_settings_defaults(defaults: Manifests) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    expected = {
        "GATEWAY_MAX_HEADER_BYTES": "32768",
        "GATEWAY_MAX_HEADER_COUNT": "100",
        "GATEWAY_HEADER_TIMEOUT_SECONDS": "10",
        "GATEWAY_KEEPALIVE_TIMEOUT_SECONDS": "5",
        "GATEWAY_MAX_CONNECTIONS": "2048",
        "GATEWAY_AUTH_FAILURES_PER_MINUTE": "60",
        "GATEWAY_METRICS_PORT": "9464",
        "GATEWAY_MAX_BODY_BYTES": "1048576",
    }
    assert {name: env(gateway, name)["value"] for name in expected} == expected


def test_the_gateways_connection_limits_come_from_values(render: Render) -> None:
    server = {
        "maxHeaderBytes": 16384,
        "maxHeaderCount": 50,
        "headerTimeoutSeconds": 4.5,
        "bodyTimeoutSeconds": 20,
        "keepaliveTimeoutSeconds": 2,
        "maxConnections": 4_000_000,
    }
    manifests = render({"gateway": {"server": server, "authFailuresPerMinute": 10}})
    gateway = manifests.named("Deployment", "-gateway")
    assert env(gateway, "GATEWAY_MAX_HEADER_BYTES")["value"] == "16384"
    assert env(gateway, "GATEWAY_MAX_HEADER_COUNT")["value"] == "50"
    assert env(gateway, "GATEWAY_HEADER_TIMEOUT_SECONDS")["value"] == "4.5"
    assert env(gateway, "GATEWAY_BODY_TIMEOUT_SECONDS")["value"] == "20"
    assert env(gateway, "GATEWAY_KEEPALIVE_TIMEOUT_SECONDS")["value"] == "2"
    assert env(gateway, "GATEWAY_MAX_CONNECTIONS")["value"] == "4000000"
    assert env(gateway, "GATEWAY_AUTH_FAILURES_PER_MINUTE")["value"] == "10"


def test_large_integer_settings_reach_the_gateway_as_integers(render: Render) -> None:
    """Helm reads values as floats: printed as they are, 50000000 would be 5e+07, which an
    integer setting refuses."""
    limits = {"tokensPerMinute": 20_000_000, "monthlyTokens": 50_000_000}
    manifests = render({"gateway": {"limits": limits, "usage": {"maxPending": 1_000_000}}})
    gateway = manifests.named("Deployment", "-gateway")
    assert env(gateway, "GATEWAY_LIMIT_TOKENS_PER_MINUTE")["value"] == "20000000"
    assert env(gateway, "GATEWAY_LIMIT_MONTHLY_TOKENS")["value"] == "50000000"
    assert env(gateway, "GATEWAY_USAGE_MAX_PENDING")["value"] == "1000000"


def test_the_trusted_proxies_are_set_only_when_given(defaults: Manifests, render: Render) -> None:
    """Behind an ingress controller the client address (for the failed-authentication
    throttle) is X-Forwarded-For's, believed from the controller's pods only."""
    names = [
        v["name"] for v in pod(defaults.named("Deployment", "-gateway"))["containers"][0]["env"]
    ]
    assert "FORWARDED_ALLOW_IPS" not in names
    manifests = render({"gateway": {"forwardedAllowIps": "10.244.0.0/16"}})
    gateway = manifests.named("Deployment", "-gateway")
    assert env(gateway, "FORWARDED_ALLOW_IPS")["value"] == "10.244.0.0/16"


def test_a_fast_rise_of_failed_authentications_raises_an_alert(render: Render) -> None:
    """Every failure (any reason, throttled ones too) counts, over all replicas."""
    rule_values = {"enabled": True, "authFailuresPerSecond": 0.5}
    manifests = render({"monitoring": {"prometheusRule": rule_values}})
    [group] = manifests.named("PrometheusRule", "-llm-gateway")["spec"]["groups"]
    [rule] = [r for r in group["rules"] if "gateway_auth_failures_total" in r["expr"]]
    assert rule["expr"] == "sum(rate(gateway_auth_failures_total[5m])) > 0.5"
    assert rule["for"] == "10m"
    assert "0.5" in rule["annotations"]["summary"]


@pytest.mark.parametrize("metrics_port", [9464, 9100])
def test_metrics_are_served_and_scraped_on_their_own_port(
    render: Render, metrics_port: int
) -> None:
    manifests = render(
        {
            "gateway": {"metricsPort": metrics_port},
            "monitoring": {"serviceMonitor": {"enabled": True}},
        }
    )
    gateway = manifests.named("Deployment", "-gateway")
    ports = listening(gateway)
    assert int(env(gateway, "GATEWAY_METRICS_PORT")["value"]) == ports["metrics"] == metrics_port
    assert ports["metrics"] != ports["http"]
    annotations = gateway["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)
    service = manifests.named("Service", "-gateway")
    assert {"name": "metrics", "port": metrics_port, "targetPort": "metrics"} in service["spec"][
        "ports"
    ]
    [endpoint] = manifests.named("ServiceMonitor", "-gateway")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    server = container(gateway, "gateway")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert server[probe]["httpGet"]["port"] == "http"  # the API port answers the health


def test_a_load_balancer_does_not_publish_the_metrics_port(everything: Manifests) -> None:
    public = everything.named("Service", "-gateway")
    assert public["spec"]["type"] == "LoadBalancer"
    assert [port["name"] for port in public["spec"]["ports"]] == ["http"]
    metrics = everything.named("Service", "-gateway-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert selects(metrics["spec"]["selector"], everything.named("Deployment", "-gateway"))
    assert [port["targetPort"] for port in metrics["spec"]["ports"]] == ["metrics"]
    monitor = everything.named("ServiceMonitor", "-gateway")["spec"]
    assert all(
        metrics["metadata"]["labels"].get(k) == v
        for k, v in monitor["selector"]["matchLabels"].items()
    )


# The values schema and the chart's own checks


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ({"gateway": {"metricsPort": 9100}}, {"gateway": {"metricsPort": "9464"}}),
        ({"gateway": {"metricsPort": 9100}}, {"gateway": {"metricsPort": 70000}}),
        ({"gateway": {"maxBodyBytes": 2097152}}, {"gateway": {"maxBodyBytes": "2m"}}),
        (
            {"gateway": {"server": {"maxHeaderBytes": 65536}}},
            {"gateway": {"server": {"maxHeaderBytes": "32k"}}},
        ),
        (
            {"gateway": {"server": {"maxHeaderCount": 50}}},
            {"gateway": {"server": {"maxHeaderCount": 0}}},
        ),
        (
            {"gateway": {"server": {"maxConnections": 100}}},
            {"gateway": {"server": {"maxConnection": 100}}},
        ),
        ({"gateway": {"authFailuresPerMinute": 0}}, {"gateway": {"authFailuresPerMinute": -1}}),
        (
            {"gateway": {"forwardedAllowIps": "10.0.0.0/8, 192.168.1.1"}},
            {"gateway": {"forwardedAllowIps": "ingress-nginx"}},
        ),
        (
            {"gateway": {"allowedHosts": ["llm.example.com", "*"]}},
            {"gateway": {"allowedHosts": ["llm.example.com:443"]}},
        ),
        ({"ingress": ENABLED_INGRESS}, {"ingress": {"enabled": True}}),
        (
            {"ingress": ENABLED_INGRESS},
            {"ingress": {**ENABLED_INGRESS, "hosts": ["*.example.com"]}},
        ),
        (
            {"ingress": {"annotations": {"a.io/b": "5"}}},
            {"ingress": {"annotations": {"a.io/b": 5}}},
        ),
        (
            {"ingress": {"nginx": {"timeoutSeconds": 60}}},
            {"ingress": {"nginx": {"timeoutSeconds": "60s"}}},
        ),
        ({"httpRoute": ENABLED_ROUTE}, {"httpRoute": {**ENABLED_ROUTE, "parentRefs": []}}),
        ({"httpRoute": ENABLED_ROUTE}, {"httpRoute": {**ENABLED_ROUTE, "hostnames": []}}),
        (
            {"httpRoute": {"timeouts": {"request": "10m"}}},
            {"httpRoute": {"timeouts": {"request": "ten minutes"}}},
        ),
        ({"networkPolicy": {"enabled": False}}, {"networkPolicy": {"enabled": "no"}}),
        (
            {
                "networkPolicy": {
                    "metricsScraper": {"podSelector": {"matchLabels": {"app": "prometheus"}}}
                }
            },
            {"networkPolicy": {"metricsScraper": {"podSelector": {"app": "prometheus"}}}},
        ),
        (
            {"networkPolicy": {"gateway": {"apiFrom": [{"podSelector": {}}]}}},
            {"networkPolicy": {"gateway": {"apiFrom": {"podSelector": {}}}}},
        ),
        (
            {"networkPolicy": {"metricsScraper": {"namespace": "observability"}}},
            {"networkPolicy": {"metricsScraper": {"namespace": "Observability"}}},
        ),
        (
            {"gateway": {"extraEnv": [{"name": "GATEWAY_USAGE_BATCH_SIZE", "value": "250"}]}},
            {"gateway": {"extraEnv": [{"name": "GATEWAY_MAX_BODY_BYTES", "value": "2097152"}]}},
        ),
    ],
    ids=[
        "string-metrics-port",
        "metrics-port-out-of-range",
        "body-size-with-a-unit",
        "string-header-bytes",
        "no-headers",
        "misspelt-server-key",
        "negative-failed-authentications",
        "trusted-proxy-by-name",
        "allowed-host-with-a-port",
        "ingress-without-hosts",
        "ingress-wildcard-host",
        "number-annotation",
        "timeout-with-a-unit",
        "route-without-parents",
        "route-without-hostnames",
        "route-timeout-not-a-duration",
        "string-for-boolean",
        "pod-selector-without-match-labels",
        "api-from-not-a-list",
        "scraper-namespace-not-a-name",
        "extra-env-sets-what-a-value-sets",
    ],
)
def test_a_wrong_security_value_fails_lint_and_its_right_one_passes(
    lint: Lint, tmp_path: Path, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    assert errors(lint(chart_with_values(tmp_path / "good", good))) == []
    assert "values.yaml" in errors(lint(chart_with_values(tmp_path / "bad", bad)))


def test_a_metrics_port_equal_to_the_api_port_fails_the_install(
    helm_python: Path, tmp_path: Path
) -> None:
    """The template's `fail` (lint only logs it; install and template stop on it)."""
    chart = chart_with_values(tmp_path, {"gateway": {"metricsPort": 8080}})
    _, log = helm_lint(helm_python, chart)
    assert "gateway.metricsPort must differ from gateway.port" in log
