"""The Kubernetes manifests validate against the Kubernetes schemas (kubernetes-validate, strict).

RayCluster is a KubeRay custom resource with no bundled schema: its pod templates are validated as
core PodTemplates and its spec's required structure is checked here.
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes_validate import SchemaNotFoundError, validate

from tests.server import ROOT

VERSION = "1.30.0"
MANIFESTS = sorted((ROOT / "k8s").glob("*.yaml"))


def documents():
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield pytest.param(doc, id=f"{path.name}:{doc['kind']}/{doc['metadata']['name']}")


def test_every_expected_resource_is_there():
    kinds = {(d.values[0]["kind"], d.values[0]["metadata"]["name"]) for d in documents()}
    for want in [("Deployment", "labelloop-coordinator"), ("Service", "labelloop"),
                 ("ConfigMap", "labelloop-config"), ("Secret", "labelloop-tokens"),
                 ("StatefulSet", "labelloop-redis"), ("RayCluster", "labelloop-ray"),
                 ("Job", "labelloop-pseudo-label")]:
        assert want in kinds


@pytest.mark.parametrize("doc", list(documents()))
def test_manifest_is_valid(doc):
    if doc["kind"] == "RayCluster":
        spec = doc["spec"]
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        assert all(isinstance(g["rayStartParams"], dict) for g in groups)
        assert all(g["groupName"] and g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
                   for g in spec["workerGroupSpecs"])
        for g in groups:
            validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                      "template": g["template"]}, VERSION, strict=True)
        return
    try:
        validate(doc, VERSION, strict=True)
    except SchemaNotFoundError as exc:  # a typo in kind/apiVersion must fail, not pass
        pytest.fail(str(exc))


def test_redis_is_durable_and_probes_hit_the_store():
    docs = {d.values[0]["kind"]: d.values[0] for d in documents()}
    conf = docs["ConfigMap"]["data"]["redis.conf"]
    assert "appendonly yes" in conf and "maxmemory-policy noeviction" in conf
    assert docs["ConfigMap"]["data"]["LABELLOOP_REQUIRE_DURABLE"] == "true"
    sts = docs["StatefulSet"]["spec"]
    assert sts["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    coordinator = docs["Deployment"]["spec"]
    assert coordinator["replicas"] == 2
    container = coordinator["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
