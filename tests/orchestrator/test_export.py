"""`qkdnet export`: Compose, Kubernetes and containerlab from one topology, validated offline and
read back object by object."""

import base64
import importlib.util
import json
import pathlib
import stat

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from qkdnet.node.endpoint import dns_label
from qkdnet.orchestrator.cli import main
from qkdnet.orchestrator.export import export
from qkdnet.orchestrator.export.common import GRPC_PORT, KME_PORT, METRICS_PORT
from qkdnet.orchestrator.monitoring import RULES_FILE, dashboards
from qkdnet.orchestrator.topology import load

KUBERNETES_VERSION = "1.30.0"


def _compose_schema() -> dict:
    """The Compose specification's JSON schema, as check-jsonschema ships it (no network)."""
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.submodule_search_locations
    root = pathlib.Path(spec.submodule_search_locations[0])
    return json.loads((root / "builtin_schemas" / "vendor" / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def topology():
    return load("default")


def test_compose_project_validates_and_has_every_node_secret_volume_and_health_check(tmp_path, topology):
    export(topology, "compose", tmp_path, "qkdnet:test")
    project = yaml.safe_load((tmp_path / "compose.yaml").read_text())
    jsonschema.validate(project, _compose_schema())
    services = project["services"]
    hosts = {node: str(dns_label(node)) for node in topology.nodes}  # default.yaml's A..E are a..e
    assert set(services) == {*hosts.values(), "controller", "prometheus", "grafana"}
    _check_monitoring(tmp_path, project, hosts)
    for node, host in hosts.items():
        service = services[host]
        assert service["image"] == "qkdnet:test"
        args = service["command"]
        assert args[:3] == ["node", "--name", node]
        assert args[args.index("--advertise") + 1] == f"{host}:{GRPC_PORT}"
        assert f"keys-{host}" in project["volumes"] and service["volumes"] == [f"keys-{host}:/var/lib/qkdnet"]
        targets = {s["target"].rsplit("/", 1)[1] for s in service["secrets"]}
        assert targets == {"node.pem", "node.key", "ca.pem", "kme.pem", "kme.key"}
        for mounted in service["secrets"]:  # every secret is a file the PKI holds
            assert (tmp_path / project["secrets"][mounted["source"]]["file"]).is_file()
        assert "qkdnet.node.probe" in service["healthcheck"]["test"]
    controller = services["controller"]
    assert controller["depends_on"] == {h: {"condition": "service_healthy"} for h in hosts.values()}
    assert controller["command"][:2] == ["run", "/etc/qkdnet/topology.yaml"]
    # The controller's topology places every node at its service name, and loads back the same network.
    placed = load(str(tmp_path / "topology.yaml"))
    assert placed.deployment == {n: f"{h}:{GRPC_PORT}" for n, h in hosts.items()}
    assert placed.links == topology.links and placed.saes == topology.saes
    assert placed.processing == topology.processing and placed.routing == topology.routing
    for key in tmp_path.glob("pki/**/*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def _check_monitoring(directory, project, hosts):
    """Prometheus scrapes every node's 9464 with the monitor identity and loads the shipped rules;
    Grafana starts with it as data source and every shipped dashboard."""
    prometheus, grafana = project["services"]["prometheus"], project["services"]["grafana"]
    config_files = {c["target"]: directory / project["configs"][c["source"]]["file"]
                    for c in prometheus["configs"] + grafana["configs"]}
    scrape = yaml.safe_load(config_files["/etc/prometheus/prometheus.yml"].read_text())
    (job,) = scrape["scrape_configs"]
    assert job["scheme"] == "https" and job["tls_config"]["cert_file"].endswith("/monitor.pem")
    assert {t for group in job["static_configs"] for t in group["targets"]} == {
        f"{h}:{METRICS_PORT}" for h in hosts.values()}
    assert config_files[scrape["rule_files"][0]].read_text() == RULES_FILE.read_text()
    mounted = {s["target"].rsplit("/", 1)[1]: directory / project["secrets"][s["source"]]["file"]
               for s in prometheus["secrets"]}
    assert set(mounted) == {"ca.pem", "monitor.pem", "monitor.key"}
    assert x509.load_pem_x509_certificate(mounted["monitor.pem"].read_bytes()).subject.rfc4514_string() == (
        "CN=qkdnet:monitor")
    boards = {path.name for target, path in config_files.items() if target.endswith(".json")}
    assert boards == {f"qkdnet-{view}.json" for view in dashboards.VIEWS}
    source = yaml.safe_load(config_files["/etc/grafana/provisioning/datasources/qkdnet.yml"].read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def test_kubernetes_manifests_validate_and_cover_every_node_policy_and_probe(tmp_path, topology):
    export(topology, "kubernetes", tmp_path, "qkdnet:test")
    directory = tmp_path / "kubernetes"
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((directory / name).read_text())]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    hosts = {node: str(dns_label(node)) for node in topology.nodes}
    assert set(by_kind["StatefulSet"]) == set(hosts.values()) == set(by_kind["NetworkPolicy"])
    assert set(by_kind["Service"]) == set(hosts.values())
    assert set(by_kind["Secret"]) == {f"{h}-identity" for h in hosts.values()} | {
        f"sae-{dns_label(s)}" for s in topology.saes} | {"controller-identity", "monitor-identity"}
    assert set(by_kind["Secret"]["monitor-identity"]["data"]) == {"ca.pem", "monitor.pem", "monitor.key"}
    scrape = yaml.safe_load(by_kind["ConfigMap"]["qkdnet-prometheus"]["data"]["prometheus.yml"])
    namespace = kustomization["namespace"]
    assert {(job["static_configs"][0]["targets"][0], job["tls_config"]["server_name"])
            for job in scrape["scrape_configs"]} == {(f"{h}.{namespace}.svc:{METRICS_PORT}", h) for h in hosts.values()}
    boards = by_kind["ConfigMap"]["qkdnet-dashboards"]
    assert boards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(boards["data"]) == {f"qkdnet-{view}.json" for view in dashboards.VIEWS}
    for node, host in hosts.items():
        assert by_kind["StatefulSet"][host]["metadata"]["labels"]["qkdnet.io/node"] == node
        pod = by_kind["StatefulSet"][host]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"]["exec"]["command"][:3] == ["python", "-m", "qkdnet.node.probe"]
        assert container["livenessProbe"]["exec"]["command"] == container["readinessProbe"]["exec"]["command"]
        assert container["resources"]["requests"]["memory"]
        assert by_kind["StatefulSet"][host]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "keys"
        secret = by_kind["Secret"][f"{host}-identity"]["data"]
        assert b"PRIVATE KEY" in base64.b64decode(secret["node.key"])
        assert by_kind["Service"][host]["spec"]["clusterIP"] == "None"
        # Only the neighbours and the controller reach gRPC; only the node's own SAEs its KME.
        grpc_rule, metrics_rule, *kme_rules = by_kind["NetworkPolicy"][host]["spec"]["ingress"]
        assert metrics_rule["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]  # to monitoring only
        assert all(next(iter(peer.values())) == {"matchLabels": {"qkdnet.io/role": "monitoring"}}
                   for peer in metrics_rule["from"])
        assert grpc_rule["ports"] == [{"protocol": "TCP", "port": GRPC_PORT}]
        allowed = {v for peer in grpc_rule["from"] for e in peer["podSelector"].get("matchExpressions", [])
                   for v in e["values"]}
        assert allowed == set(topology.graph.neighbors(node))
        assert {"podSelector": {"matchLabels": {"qkdnet.io/role": "controller"}}} in grpc_rule["from"]
        saes = {s for s, at in topology.saes.items() if at == node}
        assert {v for rule in kme_rules for peer in rule["from"] for e in peer["podSelector"]["matchExpressions"]
                for v in e["values"]} == saes
        assert all(rule["ports"] == [{"protocol": "TCP", "port": KME_PORT}] for rule in kme_rules)
    job = by_kind["Job"]["controller"]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"][:2] == ["run", "/etc/qkdnet/topology.yaml"]
    placed = yaml.safe_load(by_kind["ConfigMap"]["topology"]["data"]["topology.yaml"])
    assert placed["deployment"] == {n: f"{h}:{GRPC_PORT}" for n, h in hosts.items()}
    assert stat.S_IMODE((directory / "secrets.yaml").stat().st_mode) == 0o600


def test_containerlab_topology_has_every_node_and_one_link_per_edge(tmp_path, topology):
    export(topology, "containerlab", tmp_path, "qkdnet:test")
    lab = yaml.safe_load((tmp_path / "qkdnet.clab.yml").read_text())
    nodes = lab["topology"]["nodes"]
    hosts = {node: str(dns_label(node)) for node in topology.nodes}
    assert set(nodes) == {*hosts.values(), "controller"}
    assert all(n["kind"] == "linux" and n["image"] == "qkdnet:test" for n in nodes.values())
    edges = {frozenset(e.split(":")[0] for e in link["endpoints"]) for link in lab["topology"]["links"]}
    assert edges == {frozenset((hosts[link.transmitter], hosts[link.receiver])) for link in topology.links}
    endpoints = [e for link in lab["topology"]["links"] for e in link["endpoints"]]
    assert len(endpoints) == len(set(endpoints))  # every interface used once
    for host in hosts.values():
        source = nodes[host]["binds"][0].split(":")[0]
        assert {p.name for p in (tmp_path / source).iterdir()} == {"node.pem", "node.key", "ca.pem", "kme.pem",
                                                                   "kme.key"}
        assert stat.S_IMODE((tmp_path / source / "node.key").stat().st_mode) == 0o600
    assert load(str(tmp_path / "topology.yaml")).deployment[topology.nodes[0]].startswith("clab-")


def test_export_refuses_a_non_empty_directory_and_a_name_that_is_no_dns_label(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    assert main(["export", "line:3", "--to", "compose", str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]
    assert main(["export", "line:3", "--to", "compose", str(tmp_path / "out"), "--force"]) == 0
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me" and (tmp_path / "out" / "compose.yaml").is_file()

    topology = tmp_path / "digits.yaml"
    topology.write_text("nodes: [alice, 7bob]\nlinks: [{source: alice, target: 7bob}]\n")
    assert main(["export", str(topology), "--to", "kubernetes", str(tmp_path / "k8s")]) == 2
    err = capsys.readouterr().err
    assert "node '7bob' cannot be exported" in err and len(err.strip().splitlines()) == 1
    topology.write_text("nodes: [Bob, bob]\nlinks: [{source: Bob, target: bob}]\n")  # one host name for two
    assert main(["export", str(topology), "--to", "compose", str(tmp_path / "k8s")]) == 2
    assert "node 'bob' cannot be exported: its host name 'bob' is also that of node 'Bob'" in capsys.readouterr().err
    assert not (tmp_path / "k8s").exists() or not any((tmp_path / "k8s").iterdir())
