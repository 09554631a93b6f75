"""deploy/k8s, checked offline: the Kubernetes schemas, and agreement with the image.

``kubernetes-validate`` (dev group) bundles the API schemas, so no cluster or network is
needed. The rest ties the manifests to deploy/Dockerfile, deploy/openenv.yaml and the
server's settings, so a change to one without the other fails here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from sqlenv_server.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
FILES = ("deployment.yaml", "service.yaml", "hpa.yaml")
# the oldest Kubernetes still in common use, and the newest the validator knows
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def _load(name: str) -> dict[str, Any]:
    (doc,) = list(yaml.safe_load_all((K8S / name).read_text()))
    return doc


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return {kind: _load(f"{kind}.yaml") for kind in ("deployment", "service", "hpa")}


@pytest.fixture(scope="module")
def container(docs) -> dict[str, Any]:
    (c,) = docs["deployment"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", FILES)
def test_each_manifest_is_valid_for_kubernetes(name: str, version: str) -> None:
    kubernetes_validate.validate(_load(name), version, strict=True)


def test_the_validator_catches_a_mistake(docs) -> None:
    broken = copy.deepcopy(docs["deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["port"] = 8000  # not "ports"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    broken = copy.deepcopy(docs["hpa"])
    broken["spec"]["minReplicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest_and_the_image_tag() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(FILES)
    manifest = yaml.safe_load((ROOT / "deploy" / "openenv.yaml").read_text())
    assert kustomization["images"] == [{"name": "sqlenv", "newTag": manifest["version"]}]


def test_image_port_and_resources_match_the_dockerfile_and_manifest(container) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    manifest = yaml.safe_load((ROOT / "deploy" / "openenv.yaml").read_text())
    assert container["image"] == f"sqlenv:{manifest['version']}"
    (port,) = container["ports"]
    exposed = int(re.search(r"^EXPOSE (\d+)$", dockerfile, re.M).group(1))
    assert port["containerPort"] == exposed == manifest["port"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["PORT"]) == exposed  # the server listens on $PORT
    requests = container["resources"]["requests"]
    assert float(requests["cpu"]) == manifest["validation"]["resources"]["cpu"]
    assert requests["memory"] == f"{manifest['validation']['resources']['memory_mb'] // 1024}Gi"
    assert container["resources"]["limits"]["memory"] == requests["memory"]


def test_the_pod_runs_as_the_images_user(docs) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    user = int(re.search(r"^USER (\d+)$", dockerfile, re.M).group(1))
    security = docs["deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsUser"] == user and security["runAsNonRoot"] is True


def test_every_setting_is_one_the_server_reads(container) -> None:
    known = {var for _, names in ENV_VARS.values() for var in names}
    names = [e["name"] for e in container["env"]]
    assert set(names) <= known, set(names) - known
    assert "SQLENV_MAX_SESSIONS" in names  # the per-pod session cap is explicit


def test_probes_use_the_health_route_on_the_named_port(container) -> None:
    port_names = {p["name"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get == {"path": "/health", "port": "http"}
        assert get["port"] in port_names


def test_service_and_hpa_point_at_the_deployment(docs, container) -> None:
    deployment, service, hpa = docs["deployment"], docs["service"], docs["hpa"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert service["spec"]["selector"] == labels
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert service["spec"]["sessionAffinity"] == "None"  # WebSockets spread over the pods
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and "cpu" in container["resources"]["requests"]
    assert 1 <= hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
