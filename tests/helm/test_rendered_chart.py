"""What the chart asks Kubernetes for, as Helm renders it: the gateway, Triton, the engine
build, migrations, data stores and monitoring."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml  # type: ignore[import-untyped,unused-ignore]

from build_engines.cli import main as build_engines_main
from gateway.inference.catalog import load_catalog
from tests.helm.conftest import CHART, REPOSITORY, Manifests, Render
from tests.triton_fixtures import RANDOM_TWINS

PRODUCTION_CATALOG = REPOSITORY / "deploy" / "catalog.production.json"


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in pod(workload)["containers"] if c["name"] == name]
    [one] = found
    return one


def env(workload: dict[str, Any], name: str) -> dict[str, Any]:
    """One environment variable of a workload's main container."""
    found: list[dict[str, Any]] = [
        v for v in pod(workload)["containers"][0]["env"] if v["name"] == name
    ]
    [one] = found
    return one


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def names(manifests: Manifests, kind: str) -> list[str]:
    return [item["metadata"]["name"] for item in manifests.of_kind(kind)]


def tritons(manifests: Manifests) -> list[dict[str, Any]]:
    return [d for d in manifests.of_kind("Deployment") if "-triton-" in d["metadata"]["name"]]


def text_tritons(manifests: Manifests) -> list[dict[str, Any]]:
    """The Tritons of the Llama-2 engines (not the embedding model's)."""
    return [d for d in tritons(manifests) if not d["metadata"]["name"].endswith("-embeddings")]


def engine_build(manifests: Manifests) -> dict[str, Any]:
    [job] = [j for j in manifests.of_kind("Job") if "-engine-build-" in j["metadata"]["name"]]
    return job


def build_markers(manifests: Manifests) -> list[str]:
    """The files the engine build job leaves when a precision is built."""
    return re.findall(r"marker=(\S+)", container(engine_build(manifests), "build")["command"][-1])


def waited_for(workload: dict[str, Any], test: str) -> list[str]:
    """What a workload's init container waits for (`until [ -f path ]`, or `-d`)."""
    [init] = pod(workload)["initContainers"]
    return re.findall(rf"until \[ {test} (\S+) \]", init["command"][-1])


def catalog(manifests: Manifests, tmp_path: Path) -> list[Any]:
    """The catalog ConfigMap, loaded by the gateway's own loader."""
    path = tmp_path / "catalog.json"
    path.write_text(manifests.named("ConfigMap", "-catalog")["data"]["catalog.json"])
    return load_catalog(path, tmp_path).entries


# The gateway


def test_the_catalog_is_the_production_catalog_with_each_model_at_its_triton_pods(
    everything: Manifests, tmp_path: Path
) -> None:
    """Each model's target is its headless Service's DNS name, so the gateway balances its
    generations over every Triton pod (gRPC round robin) instead of pinning to one."""
    production = load_catalog(PRODUCTION_CATALOG, tmp_path)
    served = catalog(everything, tmp_path)
    assert sorted(entry.name for entry in served) == sorted(entry.name for entry in production)
    for entry in served:
        assert msgspec.structs.replace(entry, triton_grpc_url=None) == production.get(entry.name)
        match = re.fullmatch(r"dns:///([^.]+)\.([^.]+)\.svc:(\d+)", str(entry.triton_grpc_url))
        assert match is not None, entry.triton_grpc_url
        host, namespace, port = match.groups()
        service = everything.named("Service", host)
        assert service["metadata"]["name"] == host
        assert service["spec"]["clusterIP"] == "None"
        assert namespace == "default"  # the release's; Helm's lint renders without one
        assert {"name": "grpc", "port": int(port), "targetPort": "grpc"} in service["spec"]["ports"]
        [triton] = [d for d in tritons(everything) if selects(service["spec"]["selector"], d)]
        assert f"--load-model={entry.triton_model}" in container(triton, "triton")["args"]


def test_only_enabled_models_are_in_the_catalog_and_served(
    defaults: Manifests, tmp_path: Path
) -> None:
    assert [entry.precision for entry in catalog(defaults, tmp_path)] == ["int8"]
    assert [d["metadata"]["name"] for d in tritons(defaults)] == [
        "test-release-llm-gateway-triton-int8"
    ]


def test_the_gateway_pod_outlives_its_stream_drain(defaults: Manifests) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    drain = float(env(gateway, "GATEWAY_SHUTDOWN_GRACE_SECONDS")["value"])
    assert pod(gateway)["terminationGracePeriodSeconds"] > drain


def test_no_origin_may_call_the_gateway_from_a_browser_by_default(defaults: Manifests) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    assert env(gateway, "GATEWAY_CORS_ALLOW_ORIGINS")["value"] == ""


def test_the_allowed_origins_reach_the_gateway_as_one_comma_separated_list(
    render: Render,
) -> None:
    origins = ["https://app.example.com", "http://localhost:3000"]
    gateway = render({"gateway": {"corsAllowOrigins": origins}}).named("Deployment", "-gateway")
    assert env(gateway, "GATEWAY_CORS_ALLOW_ORIGINS")["value"] == ",".join(origins)


def test_the_gateway_listens_on_all_interfaces_and_is_probed_on_its_health_endpoints(
    defaults: Manifests,
) -> None:
    server = container(defaults.named("Deployment", "-gateway"), "gateway")
    assert server["args"][:3] == ["serve", "--host", "0.0.0.0"]  # noqa: S104 (in a pod)
    port = int(server["args"][server["args"].index("--port") + 1])
    assert {"name": "http", "containerPort": port} in server["ports"]
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_the_usage_journal_is_on_an_empty_dir_that_outlives_the_container(
    defaults: Manifests,
) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    journal = env(gateway, "GATEWAY_USAGE_JOURNAL_DIR")["value"]
    [mount] = [
        m for m in container(gateway, "gateway")["volumeMounts"]
        if journal.startswith(m["mountPath"] + "/")
    ]  # fmt: skip
    [volume] = [v for v in pod(gateway)["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"] == {}


def test_the_gateway_reads_the_catalog_config_map(defaults: Manifests) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    path = Path(env(gateway, "GATEWAY_CATALOG_FILE")["value"])
    [mount] = [
        m for m in container(gateway, "gateway")["volumeMounts"]
        if m["mountPath"] == str(path.parent)
    ]  # fmt: skip
    [volume] = [v for v in pod(gateway)["volumes"] if v["name"] == mount["name"]]
    config_map = defaults.named("ConfigMap", "-catalog")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert path.name in config_map["data"]


def test_the_gateway_runs_in_production_with_the_admin_token_from_the_secret(
    defaults: Manifests,
) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    assert env(gateway, "GATEWAY_ENV")["value"] == "production"
    reference = env(gateway, "GATEWAY_ADMIN_TOKEN")["valueFrom"]["secretKeyRef"]
    secret = defaults.named("Secret", reference["name"])
    assert len(secret["stringData"][reference["key"]]) >= 32


def test_an_admin_token_given_in_values_is_the_one_in_the_secret(render: Render) -> None:
    token = "an-admin-token-given-by-the-operator-0123456789"
    secret = render({"gateway": {"adminToken": token}}).named("Secret", "-gateway")
    assert secret["stringData"]["GATEWAY_ADMIN_TOKEN"] == token


def test_the_gateway_service_hpa_and_pdb_all_target_the_gateway_pods(
    defaults: Manifests,
) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    service = defaults.named("Service", "-gateway")
    assert selects(service["spec"]["selector"], gateway)
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    autoscaler = defaults.named("HorizontalPodAutoscaler", "-gateway")["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == gateway["metadata"]["name"]
    assert autoscaler["minReplicas"] >= 2
    budget = defaults.named("PodDisruptionBudget", "-gateway")["spec"]
    assert selects(budget["selector"]["matchLabels"], gateway)


# Triton and the engine build


def test_triton_gets_a_gpu_shared_memory_and_the_model_volume(everything: Manifests) -> None:
    claim = everything.named("PersistentVolumeClaim", "-models")["metadata"]["name"]
    for triton in tritons(everything):
        server = container(triton, "triton")
        assert server["resources"]["requests"]["nvidia.com/gpu"] >= 1
        assert server["resources"]["limits"]["nvidia.com/gpu"] >= 1
        volumes = {v["name"]: v for v in pod(triton)["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
        assert volumes[mounts["/models"]]["persistentVolumeClaim"]["claimName"] == claim


def test_triton_is_ready_while_its_text_models_answer_and_live_until_a_stub_dies(
    everything: Manifests, tmp_path: Path
) -> None:
    """Both probes run the probe the repository writer puts in the BLS model's folder."""
    written = tmp_path / "model_repository"
    assert build_engines_main([*RANDOM_TWINS, "--precision", "all", "--output", str(written)]) == 0
    for triton in text_tritons(everything):
        precision = triton["metadata"]["name"].rsplit("-", 1)[1]
        prefix = f"llama2_7b_chat_{precision}_"
        server = container(triton, "triton")
        readiness = server["readinessProbe"]["exec"]["command"]
        assert readiness[:2] == ["python3", f"/models/{prefix}bls/1/text_models/probe.py"]
        assert (written / readiness[1].removeprefix("/models/")).is_file()
        assert readiness[2:6] == ["--model", f"{prefix}bls", "--model", f"{prefix}ensemble"]
        assert server["livenessProbe"]["exec"]["command"] == [*readiness, "--liveness"]
        assert server["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}


def test_triton_exposes_its_metrics_port(everything: Manifests) -> None:
    for triton in tritons(everything):
        server = container(triton, "triton")
        assert {"name": "metrics", "containerPort": 8002} in server["ports"]
        service = everything.named("Service", triton["metadata"]["name"])
        assert {"name": "metrics", "port": 8002, "targetPort": "metrics"} in service["spec"][
            "ports"
        ]


def test_each_triton_loads_only_its_own_precisions_models(everything: Manifests) -> None:
    for triton in text_tritons(everything):
        precision = triton["metadata"]["name"].rsplit("-", 1)[1]
        args = container(triton, "triton")["args"]
        assert "--model-control-mode=explicit" in args
        loaded = [arg.removeprefix("--load-model=") for arg in args if "--load-model=" in arg]
        assert f"llama2_7b_chat_{precision}_tensorrt_llm" in loaded
        assert all(model.startswith(f"llama2_7b_chat_{precision}_") for model in loaded)


def test_the_engine_build_runs_build_engines_for_every_enabled_precision_on_a_gpu(
    everything: Manifests,
) -> None:
    job = engine_build(everything)
    build = container(job, "build")
    script = build["command"][-1]
    runs = re.findall(r"build_engines\.cli --target trtllm --precision (\w+)", script)
    assert sorted(runs) == ["fp16", "int8", "none"]
    assert "--output /models" in script
    assert "--serve-root /models" in script
    assert build["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert pod(job)["restartPolicy"] == "Never"


def test_the_embedding_model_is_built_from_its_checkpoint_and_served_by_its_own_triton(
    everything: Manifests, defaults: Manifests
) -> None:
    job = engine_build(everything)
    script = container(job, "build")["command"][-1]
    checkpoint = re.escape('"/embedding-checkpoint/bge-small-en-v1.5"')
    assert re.search(rf"--precision none \\\s+--embedding-checkpoint {checkpoint}", script)
    claims = {v["name"]: v for v in pod(job)["volumes"]}
    assert claims["embedding-checkpoint"]["persistentVolumeClaim"]["claimName"] == (
        "bge-small-en-v1.5-checkpoint"
    )
    [triton] = [t for t in tritons(everything) if t["metadata"]["name"].endswith("-embeddings")]
    assert "--load-model=bge_small_en_v1_5" in container(triton, "triton")["args"]
    assert triton["spec"]["replicas"] == 2
    assert not any(t["metadata"]["name"].endswith("-embeddings") for t in tritons(defaults))
    assert "embedding-checkpoint" not in {v["name"] for v in pod(engine_build(defaults))["volumes"]}


def test_each_of_a_triton_pods_gpus_gets_an_engine_instance(render: Render) -> None:
    manifests = render({"triton": {"gpusPerModel": 2}})
    script = container(engine_build(manifests), "build")["command"][-1]
    assert re.findall(r"--gpus (\d+)", script) == ["2"]
    for triton in tritons(manifests):
        assert container(triton, "triton")["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_triton_and_the_gateway_wait_for_the_engines_the_build_marks_done(
    everything: Manifests,
) -> None:
    markers = build_markers(everything)
    assert 'touch "$marker"' in container(engine_build(everything), "build")["command"][-1]
    triton_waits = [path for triton in tritons(everything) for path in waited_for(triton, "-f")]
    assert sorted(triton_waits) == sorted(markers)
    gateway_waits = waited_for(everything.named("Deployment", "-gateway"), "-d")
    assert sorted(gateway_waits) == sorted(str(Path(marker).parent) for marker in markers)


def test_the_engines_are_rebuilt_for_another_triton_image(
    render: Render, defaults: Manifests
) -> None:
    newer = render({"triton": {"image": {"tag": "26.05-trtllm-python-py3"}}})
    assert build_markers(newer) != build_markers(defaults)


def test_a_changed_engine_build_is_a_new_job_and_an_unchanged_one_is_kept(
    render: Render, defaults: Manifests
) -> None:
    """A Job's pod template is immutable: changing it in place would fail the upgrade."""
    name = engine_build(defaults)["metadata"]["name"]
    assert engine_build(render({}))["metadata"]["name"] == name
    bumped = render({"gateway": {"image": {"tag": "0.2.0"}}})
    assert engine_build(bumped)["metadata"]["name"] != name
    assert len(name) <= 63


def test_without_the_engine_build_nothing_waits_for_it(external: Manifests) -> None:
    assert not any("-engine-build-" in name for name in names(external, "Job"))
    assert "initContainers" not in pod(external.named("Deployment", "-gateway"))
    assert all("initContainers" not in pod(triton) for triton in tritons(external))


# Migrations and data stores


def test_migrations_run_before_install_and_upgrade_with_an_external_database(
    external: Manifests,
) -> None:
    job = external.named("Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job, "migrate")["args"] == ["migrate"]
    reference = env(job, "DATABASE_URL")["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "llm-gateway-credentials", "key": "DATABASE_URL"}


def test_the_bundled_database_is_migrated_once_it_exists(defaults: Manifests) -> None:
    job = defaults.named("Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_the_default_bundles_postgresql_and_redis(defaults: Manifests) -> None:
    gateway = defaults.named("Deployment", "-gateway")
    postgresql = defaults.named("Service", "-postgresql")["metadata"]["name"]
    redis = defaults.named("Service", "-redis")["metadata"]["name"]
    assert f"@{postgresql}:5432/" in env(gateway, "DATABASE_URL")["value"]
    assert env(gateway, "REDIS_URL")["value"] == f"redis://{redis}:6379/0"
    assert defaults.named("StatefulSet", "-postgresql")
    assert defaults.named("Deployment", "-redis")


def test_external_stores_bundle_nothing_and_come_from_the_existing_secret(
    external: Manifests,
) -> None:
    assert names(external, "StatefulSet") == []
    assert not any(name.endswith("-redis") for name in names(external, "Deployment"))
    assert names(external, "Secret") == []
    gateway = external.named("Deployment", "-gateway")
    database = env(gateway, "DATABASE_URL")["valueFrom"]["secretKeyRef"]
    assert database == {"name": "llm-gateway-credentials", "key": "DATABASE_URL"}
    redis = env(gateway, "REDIS_URL")["valueFrom"]["secretKeyRef"]
    assert redis == {"name": "llm-gateway-credentials", "key": "REDIS_URL", "optional": True}


def test_an_existing_secret_beside_the_bundled_redis_still_uses_the_bundled_redis(
    render: Render,
) -> None:
    manifests = render({"gateway": {"existingSecret": "credentials"}})
    redis = manifests.named("Service", "-redis")["metadata"]["name"]
    gateway = manifests.named("Deployment", "-gateway")
    assert env(gateway, "REDIS_URL")["value"] == f"redis://{redis}:6379/0"


# Monitoring


def test_monitoring_objects_are_off_by_default(defaults: Manifests) -> None:
    kinds = {item["kind"] for item in defaults}
    assert kinds.isdisjoint({"ServiceMonitor", "PodMonitor", "PrometheusRule"})
    assert not any("-dashboard-" in name for name in names(defaults, "ConfigMap"))


def test_the_monitors_scrape_the_gateway_and_triton_metrics_ports(everything: Manifests) -> None:
    monitor = everything.named("ServiceMonitor", "-gateway")["spec"]
    [endpoint] = monitor["endpoints"]
    assert endpoint["path"] == "/metrics"
    # The one selected Service with that port (a LoadBalancer's metrics are on their own).
    [service] = [
        service
        for service in everything.of_kind("Service")
        if all(
            service["metadata"]["labels"].get(k) == v
            for k, v in monitor["selector"]["matchLabels"].items()
        )
        and endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    ]
    assert selects(service["spec"]["selector"], everything.named("Deployment", "-gateway"))
    podmonitor = everything.named("PodMonitor", "-triton")["spec"]
    [endpoint] = podmonitor["podMetricsEndpoints"]
    for triton in tritons(everything):
        assert selects(podmonitor["selector"]["matchLabels"], triton)
        assert endpoint["port"] in {p["name"] for p in container(triton, "triton")["ports"]}


def test_the_alert_rules_are_the_rules_file_with_the_thresholds_from_values(
    render: Render,
) -> None:
    thresholds = {
        "errorRatio": 0.1,
        "ttftP99Seconds": 3.5,
        "usageBacklog": 500,
        "authFailuresPerSecond": 2.5,
    }
    manifests = render({"monitoring": {"prometheusRule": {"enabled": True, **thresholds}}})
    rendered = manifests.named("PrometheusRule", "-llm-gateway")["spec"]["groups"]
    source = yaml.safe_load((CHART / "rules" / "alerts.yaml").read_text())["groups"]
    placeholders = {
        "ERROR_RATIO": "0.1",
        "TTFT_P99_SECONDS": "3.5",
        "USAGE_BACKLOG": "500",
        "AUTH_FAILURES_PER_SECOND": "2.5",
    }
    for group, source_group in zip(rendered, source, strict=True):
        for rule, source_rule in zip(group["rules"], source_group["rules"], strict=True):
            expected = source_rule["expr"]
            for placeholder, value in placeholders.items():
                expected = expected.replace(placeholder, value)
            assert rule["expr"] == expected
            assert rule["alert"] == source_rule["alert"]
    summaries = [rule["annotations"]["summary"] for rule in rendered[0]["rules"]]
    assert any("{{ $labels.model }}" in summary for summary in summaries)


def test_each_dashboard_ships_in_a_config_map_for_the_grafana_sidecar(
    everything: Manifests,
) -> None:
    for path in sorted((CHART / "dashboards").glob("*.json")):
        config_map = everything.named("ConfigMap", f"-dashboard-{path.stem}")
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(config_map["data"][path.name]) == json.loads(path.read_text())
