"""The deployment files (docs/deployment.md), checked without a container engine: the image's
Dockerfile (and its install step, run for real), the compose files of one host and of a
cluster, the ClickHouse, Keeper and proxy configurations, and the Kubernetes manifests
validated against Kubernetes' own schemas."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import kubernetes_validate
import pytest
import yaml

from collector.settings import Settings, documented_settings
from collector.storage.cluster import Deployment
from collector.storage.migrations import available_migrations, render
from tests.deploy_support import (
    Instruction,
    bind_sources,
    by_kind,
    compose_variables,
    containers,
    dockerfile_instructions,
    load_yaml,
    render_kustomization,
)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
SINGLE_HOST = ROOT / "docker-compose.yml"
CLUSTER_COMPOSE = DEPLOY / "clickhouse-cluster" / "docker-compose.yml"
COMPOSE_FILES = [SINGLE_HOST, CLUSTER_COMPOSE]
KUBERNETES = DEPLOY / "kubernetes"
OVERLAY = KUBERNETES / "overlays" / "production"
# The oldest Kubernetes the manifests are meant for, and the newest the schemas know.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
SETTINGS = {variable for variable, _, _ in documented_settings()}
COLLECTOR_PORT = Settings().port
ENV_EXAMPLE = {line.split("=", 1)[0] for line in
               (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
               if line and not line.startswith("#")}


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(instruction.stage for instruction in instructions)
    return [instruction for instruction in instructions if instruction.stage == last]


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    (found,) = [instruction for instruction in instructions if instruction.keyword == keyword]
    return found


# --- The image -------------------------------------------------------------------------

INSTRUCTIONS = dockerfile_instructions(DOCKERFILE)


def test_the_image_is_built_in_two_stages_on_a_supported_python() -> None:
    stages = [instruction for instruction in INSTRUCTIONS if instruction.keyword == "FROM"]
    assert len(stages) == 2 and stages[0].arguments.endswith(" AS build")
    version = only(INSTRUCTIONS, "ARG").arguments.split("=")[1]
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tuple(map(int, version.split("."))) >= tuple(
        map(int, required.removeprefix(">=").split(".")))
    assert all(stage.arguments.startswith("python:${PYTHON_VERSION}-slim") for stage in stages)
    # The runtime stage takes the installed environment, nothing from the source tree.
    runtime = final_stage(INSTRUCTIONS)
    copies = [instruction.arguments for instruction in runtime
              if instruction.keyword == "COPY"]
    assert copies == ["--from=build /opt/collector /opt/collector"]


def test_the_image_installs_the_package_as_readme_does() -> None:
    build = [instruction for instruction in INSTRUCTIONS if instruction.stage == 0]
    (install,) = [instruction.arguments for instruction in build
                  if instruction.keyword == "RUN"]
    assert re.search(r"/opt/collector/bin/pip install (--no-cache-dir )?\.$", install)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && collector serve" in readme  # the same project install
    for copy in (instruction for instruction in build if instruction.keyword == "COPY"):
        *sources, _ = copy.arguments.split()
        assert all((ROOT / source).exists() for source in sources), copy
    assert only(final_stage(INSTRUCTIONS), "CMD").arguments == '["collector", "serve"]'


def test_the_image_runs_as_a_user_of_its_own_with_a_health_check() -> None:
    runtime = final_stage(INSTRUCTIONS)
    assert only(runtime, "USER").arguments == "10001:10001"
    assert only(runtime, "EXPOSE").arguments == str(COLLECTOR_PORT)
    health = only(runtime, "HEALTHCHECK").arguments
    assert f"http://127.0.0.1:{COLLECTOR_PORT}/healthz" in health
    environment = only(runtime, "ENV").arguments
    assert "COLLECTOR_HOST=0.0.0.0" in environment  # reachable from outside the container
    assert "PYTHONDONTWRITEBYTECODE=1" in environment  # a read-only root file system


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package built from exactly what the Dockerfile copies into its build stage."""
    source = tmp_path_factory.mktemp("image-build") / "src"
    source.mkdir()
    for copy in (instruction for instruction in INSTRUCTIONS
                 if instruction.keyword == "COPY" and instruction.stage == 0):
        *sources, _ = copy.arguments.split()
        for name in sources:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / name, source / name)
    wheels = source.parent / "wheels"
    # As the image's pip does, but without the dependencies (the test environment has them):
    # the build backend comes from the package index, as for `pip install -e .`.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(wheels), str(source)], capture_output=True, text=True, timeout=600)
    if built.returncode and "setuptools" in built.stderr and "find" in built.stderr:
        pytest.skip("no package index to fetch the build backend from")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("collector-*.whl")
    yield wheel


def test_what_the_image_copies_builds_the_whole_package(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(name).decode() for name in names
                            if name.endswith("entry_points.txt"))
    shipped = {name for name in names if name.startswith("collector/")}
    for _, name, _ in available_migrations():
        assert f"collector/storage/migrations/{name}" in shipped
    for data in ("collector/enrich/data/", "collector/dashboard/static/"):
        assert any(name.startswith(data) for name in shipped), data
    assert any(name.startswith("collector/tracker/") and name.endswith(".js")
               for name in shipped)
    assert "collector = collector.cli:main" in entry_points


def test_the_installed_image_package_runs(built_wheel: Path, tmp_path: Path) -> None:
    """The Dockerfile's install step in a virtual environment of its own (dependencies
    from this one), and the command the image runs, started from it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps",
                    "--no-index", str(built_wheel)], check=True, timeout=300)
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import collector; print(collector.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(venv))
    version = subprocess.run([str(venv / "bin" / "collector"), "--version"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("collector "), version.stderr


# --- Compose ---------------------------------------------------------------------------

@pytest.fixture(params=COMPOSE_FILES, ids=["single-host", "cluster"])
def compose(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    path: Path = request.param
    return path, load_yaml(path)


def test_compose_references_resolve(compose: tuple[Path, dict[str, Any]]) -> None:
    path, spec = compose
    services, volumes = spec["services"], set(spec.get("volumes") or {})
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if ":" in volume and not source.startswith("."):
                assert source in volumes, (name, volume)
        for host in bind_sources(service, path.parent).values():
            assert host.exists() and ROOT in host.parents, (name, host)
    used = {source.split(":")[0] for service in services.values()
            for source in service.get("volumes", []) if ":" in source}
    assert volumes <= used, volumes - used


def test_compose_images_are_pinned(compose: tuple[Path, dict[str, Any]]) -> None:
    for name, service in compose[1]["services"].items():
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and tag not in ("latest", ""), (name, image)
        assert "build" in service or re.search(r"\d", tag), (name, image)


def test_compose_variables_are_in_the_example_environment(
        compose: tuple[Path, dict[str, Any]]) -> None:
    path, _ = compose
    assert compose_variables(path) - ENV_EXAMPLE == set()


def test_compose_collectors_are_workers_behind_the_address_hashing_proxy(
        compose: tuple[Path, dict[str, Any]]) -> None:
    path, spec = compose
    services = spec["services"]
    collector, proxy = services["collector"], services["proxy"]
    assert "ports" not in collector  # reached through the proxy only
    assert collector["deploy"]["replicas"].startswith("${COLLECTOR_WORKERS:-")
    # One write-ahead log per container: an anonymous volume where the setting points.
    environment = collector["environment"]
    assert environment["COLLECTOR_WAL_DIR"] in collector["volumes"]
    assert set(environment) <= SETTINGS
    # The collectors believe forwarding headers from the compose network only: the proxy's.
    (network,) = spec["networks"]["default"]["ipam"]["config"]
    assert environment["COLLECTOR_TRUSTED_PROXIES"] == network["subnet"]
    assert collector["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["collector", "migrate"]
    assert proxy["depends_on"]["collector"]["condition"] == "service_healthy"
    caddyfile = bind_sources(proxy, path.parent)["/etc/caddy/Caddyfile"]
    assert caddyfile == DEPLOY / "proxy" / "Caddyfile"
    assert stop_seconds(collector) >= 30


def stop_seconds(service: dict[str, Any]) -> int:
    value = service["stop_grace_period"]
    return int(value.removesuffix("s"))


def test_the_proxy_hashes_client_addresses_onto_the_collectors() -> None:
    caddyfile = (DEPLOY / "proxy" / "Caddyfile").read_text(encoding="utf-8")
    body = "\n".join(line.split("#")[0] for line in caddyfile.splitlines())
    assert re.search(r"^\s*lb_policy client_ip_hash\s*$", body, re.MULTILINE)
    upstream = re.search(r"dynamic a \{\s*name \{\$COLLECTOR_UPSTREAM:(\w+)\}\s*port (\d+)",
                         body)
    assert upstream and upstream.group(1) == "collector"
    assert int(upstream.group(2)) == COLLECTOR_PORT
    assert not re.search(r"^\s*log\s*$", body, re.MULTILINE)  # no access log of addresses
    assert "{$COLLECTOR_SITE_ADDRESS" in body


def test_clickhouse_is_pinned_configured_for_a_small_host_and_healthy() -> None:
    services = load_yaml(SINGLE_HOST)["services"]
    clickhouse = services["clickhouse"]
    assert clickhouse["image"].startswith("clickhouse/clickhouse-server:${CLICKHOUSE_VERSION")
    mounted = bind_sources(clickhouse, ROOT)
    assert set(mounted) >= {"/etc/clickhouse-server/config.d/logs.xml",
                            "/etc/clickhouse-server/config.d/small-host.xml",
                            "/etc/clickhouse-server/users.d/small-host.xml"}
    assert "/ping" in " ".join(clickhouse["healthcheck"]["test"])
    assert "mem_limit" in clickhouse


# --- ClickHouse, Keeper and the cluster ------------------------------------------------

def xml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.xml"))


@pytest.mark.parametrize("path", xml_files(), ids=lambda path: str(path.relative_to(DEPLOY)))
def test_configuration_files_are_well_formed(path: Path) -> None:
    assert ElementTree.parse(path).getroot().tag == "clickhouse"


def test_no_server_logs_what_a_request_carried() -> None:
    """Trace and debug lines print each HTTP request's URI: a salt is a bound parameter."""
    logger = ElementTree.parse(DEPLOY / "clickhouse" / "config.d" / "logs.xml").getroot()
    assert logger.findtext("logger/level") == "warning"
    profile = ElementTree.parse(DEPLOY / "clickhouse" / "users.d" / "small-host.xml").getroot()
    assert profile.findtext("profiles/default/log_queries") == "0"
    for service in load_yaml(CLUSTER_COMPOSE)["services"].values():
        if service["image"].startswith("clickhouse/clickhouse-server"):
            assert "/etc/clickhouse-server/config.d/logs.xml" in bind_sources(
                service, CLUSTER_COMPOSE.parent)


CLUSTER_SERVICES = load_yaml(CLUSTER_COMPOSE)["services"]
CLUSTER_XML = ElementTree.parse(DEPLOY / "clickhouse-cluster" / "clickhouse" / "cluster.xml")
KEEPER_XML = ElementTree.parse(DEPLOY / "clickhouse-cluster" / "keeper" / "keeper.xml")


def servers(image: str) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in CLUSTER_SERVICES.items()
            if service["image"].startswith(image)}


def test_the_cluster_has_two_shards_of_two_replicas_placed_by_their_environment() -> None:
    nodes = servers("clickhouse/clickhouse-server")
    (cluster,) = CLUSTER_XML.getroot().find("remote_servers")  # type: ignore[union-attr]
    shards = cluster.findall("shard")
    assert len(shards) == 2 and all(len(shard.findall("replica")) == 2 for shard in shards)
    placed = set()
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"
        for replica in shard.findall("replica"):
            host = replica.findtext("host")
            environment = nodes[str(host)]["environment"]
            assert environment["CLICKHOUSE_SHARD"] == f"{number:02d}"
            assert environment["CLICKHOUSE_REPLICA"] == host == nodes[str(host)]["hostname"]
            placed.add(host)
    assert placed == set(nodes)
    assert cluster.find("secret").get("from_env") in next(iter(nodes.values()))["environment"]
    # The collectors lay the schema out on this cluster, reaching any node by its alias.
    collector = CLUSTER_SERVICES["collector"]["environment"]
    assert collector["COLLECTOR_CLICKHOUSE_CLUSTER"] == cluster.tag
    alias = re.search(r"@([\w-]+):8123/", collector["COLLECTOR_CLICKHOUSE_URL"])
    assert alias and all(alias.group(1) in node["networks"]["default"]["aliases"]
                         for node in nodes.values())
    assert set(CLUSTER_SERVICES["migrate"]["depends_on"]) == set(nodes)


def test_every_node_defines_the_macros_the_replication_paths_use() -> None:
    macros = CLUSTER_XML.getroot().find("macros")
    assert macros is not None
    defined = {element.tag: element.get("from_env") for element in macros}
    used = set()
    for _, _, template in available_migrations():
        for statement in render(template, Deployment(cluster="analytics")):
            used |= set(re.findall(r"\{(\w+)\}", statement)) - {"database"}
    assert used == set(defined) == {"shard", "replica"}
    for node in servers("clickhouse/clickhouse-server").values():
        assert set(defined.values()) <= set(node["environment"])


def test_three_keepers_form_the_ensemble_the_servers_use() -> None:
    keepers = servers("clickhouse/clickhouse-keeper")
    assert len(keepers) == 3
    server = KEEPER_XML.getroot().find("keeper_server")
    assert server is not None and server.find("server_id").get("from_env") == "KEEPER_SERVER_ID"
    raft = {element.findtext("hostname"): element.findtext("id")
            for element in server.findall("raft_configuration/server")}
    assert raft == {service["hostname"]: service["environment"]["KEEPER_SERVER_ID"]
                    for service in keepers.values()}
    nodes = {(node.findtext("host"), node.findtext("port"))
             for node in CLUSTER_XML.getroot().findall("zookeeper/node")}
    assert nodes == {(host, server.findtext("tcp_port")) for host in raft}
    for keeper in keepers.values():
        mounted = bind_sources(keeper, CLUSTER_COMPOSE.parent)
        assert mounted["/etc/clickhouse-keeper/keeper_config.xml"] == \
            DEPLOY / "clickhouse-cluster" / "keeper" / "keeper.xml"


# --- Kubernetes ------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(path for path in KUBERNETES.rglob("*.yaml")
                  if path.name != "kustomization.yaml")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", [path for path in manifest_files() if "base" in path.parts],
                         ids=lambda path: path.name)
def test_base_manifests_validate_against_the_kubernetes_schemas(path: Path,
                                                                version: str) -> None:
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        kubernetes_validate.validate(document, version, strict=True)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render_kustomization(OVERLAY)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_rendered_overlay_validates_against_the_kubernetes_schemas(
        overlay: list[dict[str, Any]], version: str) -> None:
    assert len(overlay) >= 9
    for resource in overlay:
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_rendering_here_is_kustomizes(overlay: list[dict[str, Any]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl to compare with")
    built = subprocess.run([kubectl, "kustomize", str(OVERLAY)], capture_output=True,
                           text=True, check=True, timeout=120)
    assert by_kind(list(yaml.safe_load_all(built.stdout))) == by_kind(overlay)


def test_kustomizations_list_every_manifest() -> None:
    listed = set()
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        spec = load_yaml(kustomization)
        listed |= {(kustomization.parent / entry).resolve()
                   for entry in spec.get("resources", []) + [patch["path"] for patch
                                                            in spec.get("patches", [])]}
    assert set(manifest_files()) <= listed


def test_each_pod_keeps_its_write_ahead_log_and_writes_nothing_else(
        overlay: list[dict[str, Any]]) -> None:
    resources = by_kind(overlay)
    collectors = resources[("StatefulSet", "collector")]
    spec = collectors["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {
        "drop": ["ALL"]}
    user = only(final_stage(INSTRUCTIONS), "USER").arguments.split(":")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert [str(pod["securityContext"]["runAsUser"]),
            str(pod["securityContext"]["runAsGroup"])] == user
    # Every writable path is a volume; the data directory (write-ahead log inside) a claim
    # of the pod's own, which follows it across restarts.
    claims = {claim["metadata"]["name"] for claim in spec["volumeClaimTemplates"]}
    volumes = {volume["name"] for volume in pod["volumes"]} | claims
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert set(mounts.values()) <= volumes
    environment = {item["name"]: item["value"] for item in container["env"]}
    assert mounts[environment["COLLECTOR_DATA_DIR"]] in claims
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                            "whenScaled": "Retain"}
    assert spec["podManagementPolicy"] == "OrderedReady" and "replicas" not in spec
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert container["resources"]["requests"]["cpu"] and "cpu" not in container[
        "resources"]["limits"]


def test_probes_ask_the_collectors_health_endpoints(overlay: list[dict[str, Any]]) -> None:
    (container,) = containers(overlay)
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": COLLECTOR_PORT}
    probes = {name: container[name]["httpGet"] for name in
              ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {name: probe["path"] for name, probe in probes.items()} == {
        "startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    assert all(probe["port"] == "http" for probe in probes.values())


def test_visitors_keep_reaching_one_pod(overlay: list[dict[str, Any]]) -> None:
    resources = by_kind(overlay)
    labels = resources[("StatefulSet", "collector")]["spec"]["template"]["metadata"]["labels"]
    service = resources[("Service", "collector")]["spec"]
    assert service["sessionAffinity"] == "ClientIP"
    # Longer than a visit's 30 minutes of silence.
    assert service["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] > 30 * 60
    for kind, name in (("Service", "collector"), ("Service", "collector-pods")):
        assert resources[(kind, name)]["spec"]["selector"].items() <= labels.items()
    assert resources[("StatefulSet", "collector")]["spec"]["serviceName"] == "collector-pods"
    ingress = resources[("Ingress", "collector")]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$remote_addr"
    assert annotations["nginx.ingress.kubernetes.io/enable-access-log"] == "false"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "collector", "port": {"name": "http"}}


def test_the_autoscaler_and_the_disruption_budget_govern_the_collectors(
        overlay: list[dict[str, Any]]) -> None:
    resources = by_kind(overlay)
    labels = resources[("StatefulSet", "collector")]["spec"]["template"]["metadata"]["labels"]
    autoscaler = resources[("HorizontalPodAutoscaler", "collector")]["spec"]
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet",
                                            "name": "collector"}
    assert 2 <= autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    # Every change of the pod set moves visitors: shrinking waits longer than a visit.
    assert autoscaler["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 30 * 60
    budget = resources[("PodDisruptionBudget", "collector")]["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def test_configuration_is_settings_and_secrets_are_apart(overlay: list[dict[str, Any]]) -> None:
    resources = by_kind(overlay)
    config = resources[("ConfigMap", "collector-config")]["data"]
    secret = resources[("Secret", "collector-secrets")]["stringData"]
    assert set(config) <= SETTINGS and set(secret) <= SETTINGS
    assert not set(config) & set(secret)
    assert "COLLECTOR_CLICKHOUSE_URL" in secret and "COLLECTOR_METRICS_TOKEN" in secret
    assert config["COLLECTOR_CLICKHOUSE_CLUSTER"] == "analytics"
    Settings.from_env({**config, **secret, "COLLECTOR_METRICS_TOKEN": "x" * 16})
    for cidr in config["COLLECTOR_TRUSTED_PROXIES"].split(","):
        assert ipaddress.ip_network(cidr).is_private
    (container,) = containers(overlay)
    assert {source.get("configMapRef", source.get("secretRef", {}))["name"]
            for source in container["envFrom"]} == {"collector-config", "collector-secrets"}
    assert container["image"].startswith("registry.example.com/collector:")
    assert all(resource["metadata"].get("namespace") == "analytics"
               for resource in overlay if resource["kind"] != "Namespace")
