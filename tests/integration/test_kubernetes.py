"""deploy/kubernetes/: the manifests agree with the narwhal.toml their ConfigMap carries,
and that toml runs the real binary.

Cases: every manifest parses, and kustomization.yaml lists exactly them (rendered by
`kubectl kustomize` when kubectl is installed: it needs no cluster); the ConfigMap's
narwhal.toml is accepted by `narwhal --print-config` with every value as written, and
is the file the Deployment's --config names; the probes' paths and ports, the
container ports and the Service's target ports are the toml's; the grace period covers
the stop the toml allows (preStop sleep, shutdown delay, graceful shutdown,
cancellation, lifespan shutdown) and the readiness probe fails within the shutdown
delay; the security context is non-root with a read-only root; the HPA scales the
Deployment on a CPU request that exists. Then the real binary serves with that toml
(host and port overridden on the command line, which wins over the file): the probes
answer 200 with JSON, the app and the metrics port answer, the log is JSON, and after
SIGTERM the readiness probe's path turns 503 while the liveness path stays 200.

No schema validation: `kubectl apply --dry-run=client` needs a cluster for the API's
schema, and no Debian package ships one.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli
from rawhttp import exchange, request

MANIFESTS = ROOT / "deploy" / "kubernetes"
GUARD = 20.0
# What deployment.yaml allows for the app's lifespan shutdown after the requests are
# done: the same 5 s the master gives its workers for it under --workers.
LIFESPAN_SHUTDOWN_ALLOWANCE = 5.0


def load(name: str) -> dict:
    return yaml.safe_load((MANIFESTS / name).read_text())


def manifests() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text())
            for p in sorted(MANIFESTS.glob("*.yaml")) if p.name != "kustomization.yaml"}


def config_toml() -> str:
    return load("configmap.yaml")["data"]["narwhal.toml"]


def config() -> dict:
    return tomllib.loads(config_toml())


def pod_spec() -> dict:
    return load("deployment.yaml")["spec"]["template"]["spec"]


def container() -> dict:
    (only,) = pod_spec()["containers"]  # one process per container, one container per pod
    return only


def container_port(port) -> int:
    """A probe's or Service's port, by name or number, as the container's port number."""
    ports = container()["ports"]
    if isinstance(port, str):
        (match,) = [p for p in ports if p["name"] == port]
        return match["containerPort"]
    assert port in [p["containerPort"] for p in ports], port
    return port


def write_toml(tmp_path: Path) -> Path:
    path = tmp_path / "narwhal.toml"
    path.write_text(config_toml())
    return path


def test_every_manifest_parses_and_the_kustomization_lists_them():
    found = manifests()
    assert set(found) == {"configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml"}
    for name, doc in found.items():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], name
    kustomization = load("kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(found)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_manifests_unchanged():
    rendered = subprocess.run(["kubectl", "kustomize", str(MANIFESTS)], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert rendered.returncode == 0, rendered.stderr
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])
    assert sorted(yaml.safe_load_all(rendered.stdout), key=key) == \
        sorted(manifests().values(), key=key)


def test_the_toml_is_accepted_by_narwhal_with_every_value(tmp_path):
    path = write_toml(tmp_path)
    result = run_cli("--config", str(path), "--print-config")
    assert result.returncode == 0, result.stderr
    effective = tomllib.loads(result.stdout)
    written = config()
    for key, value in written.items():
        assert effective[key] == value, (key, effective[key], value)
    # The settings the probes and the grace period rely on are all written down, not
    # left to defaults that could change under the manifests.
    for key in ("host", "port", "health_live_path", "health_ready_path", "metrics_bind",
                "timeout_shutdown_delay", "timeout_graceful_shutdown", "timeout_cancel_grace",
                "log_format", "forwarded_allow_ips"):
        assert key in written, key
    assert written["host"] == "0.0.0.0"


def test_the_deployment_reads_the_configmaps_toml():
    spec = pod_spec()
    args = container().get("command", []) + container()["args"]
    config_path = args[args.index("--config") + 1]
    (mount,) = [m for m in container()["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == load("configmap.yaml")["metadata"]["name"]
    assert config_path == mount["mountPath"] + "/narwhal.toml"
    assert container()["imagePullPolicy"] == "IfNotPresent"


def test_probes_and_ports_are_the_tomls():
    cfg = config()
    probes = {kind: container()[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    want = {"startupProbe": cfg["health_live_path"], "livenessProbe": cfg["health_live_path"],
            "readinessProbe": cfg["health_ready_path"]}
    for kind, probe in probes.items():
        http_get = probe["httpGet"]
        assert http_get["path"] == want[kind], kind
        assert container_port(http_get["port"]) == cfg["port"], kind
        assert http_get.get("scheme", "HTTP") == "HTTP" and "host" not in http_get, kind
    metrics_port = int(cfg["metrics_bind"].rsplit(":", 1)[1])
    assert container_port("metrics") == metrics_port
    annotations = load("deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == metrics_port


def test_the_service_targets_the_container_ports_by_name():
    service = load("service.yaml")
    deployment = load("deployment.yaml")
    assert service["spec"]["type"] == "ClusterIP"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["http"]["port"] == 80
    for port in ports.values():
        assert isinstance(port["targetPort"], str), port  # a name, never a number to keep in step
        container_port(port["targetPort"])  # names a port of the container
    assert container_port(ports["http"]["targetPort"]) == config()["port"]


def prestop_seconds(hook: dict) -> float:
    if "sleep" in hook:  # the sleep action of Kubernetes 1.30 and later
        return float(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    assert command[0] in ("sleep", "/bin/sleep") and len(command) == 2, command
    return float(command[1])


def test_the_grace_period_covers_the_whole_stop():
    cfg = config()
    prestop = prestop_seconds(container()["lifecycle"]["preStop"])
    stop = (prestop + cfg["timeout_shutdown_delay"] + cfg["timeout_graceful_shutdown"]
            + 3 * cfg["timeout_cancel_grace"] + 1 + LIFESPAN_SHUTDOWN_ALLOWANCE)
    assert pod_spec()["terminationGracePeriodSeconds"] >= stop
    # A balancer that follows the readiness probe sees it fail before the listener closes.
    ready = container()["readinessProbe"]
    assert (ready["failureThreshold"] * ready["periodSeconds"] + ready["timeoutSeconds"]
            <= cfg["timeout_shutdown_delay"])
    # A loop stuck past the live threshold is restarted only after several failures.
    live = container()["livenessProbe"]
    assert live["failureThreshold"] * live["periodSeconds"] > cfg.get("timeout_worker_healthcheck", 5)


def test_the_security_context_is_non_root_and_read_only():
    pod = pod_spec()["securityContext"]
    ctx = container()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"] and "add" not in ctx["capabilities"]
    assert config()["port"] >= 1024  # no NET_BIND_SERVICE needed
    (tmp,) = [m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume


def test_the_hpa_scales_the_deployment_on_its_cpu_request():
    hpa = load("hpa.yaml")
    deployment = load("deployment.yaml")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (deployment["kind"], deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    cpu = container()["resources"]["requests"]["cpu"]  # utilization is of the request
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    # The interpreter's thread keeps at most one core busy: a target above one core's
    # share of the request would never be reached by a saturated pod.
    assert metric["resource"]["target"]["averageUtilization"] / 100 * cores < 1


def probe(addr, path: str):
    """What the kubelet's httpGet does: GET the path on a new connection."""
    return exchange(addr, request("GET", path, headers=[("Connection", "close"),
                                                        ("User-Agent", "kube-probe/1.30")]),
                    check_closed=False)


def test_the_real_server_answers_the_deployments_probes(narwhal, tmp_path):
    path = write_toml(tmp_path)
    # The command line wins over the file: loopback and free ports for the test, every
    # other setting the ConfigMap's.
    server = narwhal("", "--config", str(path), "--metrics-bind", "127.0.0.1:0",
                     app_dir=ROOT / "examples" / "container")
    probes = {kind: container()[kind]["httpGet"]["path"]
              for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    for kind, probe_path in probes.items():
        resp = probe(server.addr, probe_path)
        assert resp.status == 200, (kind, resp)
        assert resp.header("content-type") == "application/json"
        detail = json.loads(resp.body)
        assert detail["status"] == "ok" and detail["pid"] == server.pid, kind
    app = probe(server.addr, "/")
    assert app.status == 200 and app.body == b"Hello from a container!\n"  # the toml's app
    # log_format = "json": the ready line is a JSON record.
    ready_line = server.wait_for_log(r"narwhal running on").string
    assert json.loads(ready_line)["level"] == "info"
    metrics = server.wait_for_log(r"Prometheus metrics on (http://\S+/metrics)").group(1)
    with urllib.request.urlopen(metrics, timeout=GUARD) as resp:
        assert resp.status == 200 and b"narwhal_build_info" in resp.read()

    # The stop as the kubelet sees it, after the preStop sleep: SIGTERM makes the
    # readiness path 503 while the liveness path stays 200 (the container is not
    # restarted) and the listener still answers. The delay is lengthened on the command
    # line so this holds however slow the machine is; a second SIGTERM ends it.
    server.stop()
    server = narwhal("", "--config", str(path), "--metrics-bind", "127.0.0.1:0",
                     "--timeout-shutdown-delay", "60", app_dir=ROOT / "examples" / "container")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r'"message": "Shutting down in 60 s')
    ready = probe(server.addr, probes["readinessProbe"])
    assert ready.status == 503, ready
    assert json.loads(ready.body)["draining"] is True
    assert probe(server.addr, probes["livenessProbe"]).status == 200
    assert probe(server.addr, "/").status == 200
    assert server.stop(signal.SIGTERM) == 0
    assert re.search(r"Application shutdown complete", server.log()), server.log()
