"""The container image (deploy/container/Containerfile), built and run with podman as
`make image` does: it serves the example app, its HEALTHCHECK passes, it runs as a
non-root user with the app's virtualenv (uvloop installed there is the loop in use), and
`podman stop` (SIGTERM) lets an in-flight request finish before the server exits 0.

Building the image takes minutes (a debootstrap base once, then narwhal compiled in the
build stage), so the image is built once per run. Skipped, saying why, only where podman
cannot run a container at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from balancers import free_port

ROOT = Path(__file__).resolve().parents[2]
PODMAN = ROOT / "deploy" / "container" / "podman.sh"
IMAGE = "localhost/narwhal-example:test"
BUILD_GUARD = 3600.0  # a failure guard for a cold build on a slow machine, not a pace
GUARD = 60.0


def podman(*args: str, timeout: float = GUARD, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


def release() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise AssertionError("no VERSION_CODENAME in /etc/os-release")


@pytest.fixture(scope="module")
def image() -> str:
    try:
        subprocess.run(["podman", "--version"], capture_output=True, check=True, timeout=GUARD)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"CONTAINER TESTS SKIPPED: podman is not usable here ({e})")
    base = f"localhost/narwhal-base:{release()}"
    made = subprocess.run(["bash", str(ROOT / "deploy/container/make-base.sh"), release()],
                          capture_output=True, text=True, timeout=BUILD_GUARD)
    assert made.returncode == 0, made.stdout + made.stderr
    probe = podman("run", "--rm", base, "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"CONTAINER TESTS SKIPPED: podman cannot run a container here: {probe.stderr.strip()}")
    built = podman("build", "--format", "docker", "--build-arg", f"BASE={base}", "-f",
                   str(ROOT / "deploy/container/Containerfile"), "-t", IMAGE, str(ROOT),
                   timeout=BUILD_GUARD, check=False)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return IMAGE


class Container:
    def __init__(self, image: str, *run_flags: str, args: tuple[str, ...] = (), port: int | None = None) -> None:
        self.name = f"narwhal-test-{uuid.uuid4().hex[:12]}"
        self.port = port or free_port()
        flags = [f"-e=NARWHAL_PORT={self.port}", "-e=NARWHAL_HOST=127.0.0.1", *run_flags]
        podman("run", "-d", "--name", self.name, *flags, image, *args)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_serving(self) -> None:
        deadline = time.monotonic() + GUARD
        while True:
            try:
                if httpx.get(self.url + "/", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the container never served:\n{self.logs()}")
            if self.state()["Status"] != "running":
                raise AssertionError(f"the container stopped:\n{self.logs()}")
            time.sleep(0.1)  # poll interval

    def state(self) -> dict:
        out = podman("inspect", "--format", "{{json .State}}", self.name).stdout
        return json.loads(out)

    def logs(self) -> str:
        r = podman("logs", self.name, check=False)
        return r.stdout + r.stderr

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


@pytest.fixture
def container(image):
    c = Container(image)
    try:
        c.wait_serving()
        yield c
    finally:
        c.remove()


def test_serves_the_example_app_as_non_root_with_its_virtualenv(container):
    assert httpx.get(container.url + "/", timeout=GUARD).text == "Hello from a container!\n"
    about = httpx.get(container.url + "/about", timeout=GUARD).json()
    assert about["uid"] == 10001, about
    assert about["prefix"] == "/app/venv", about
    assert about["loop"].startswith("uvloop"), about  # installed only in the virtualenv
    user = podman("exec", container.name, "id", "-u").stdout.strip()
    assert user == "10001"


def test_healthcheck_passes(container):
    r = podman("healthcheck", "run", container.name, check=False)
    assert r.returncode == 0, r.stdout + r.stderr + container.logs()
    ready = httpx.get(container.url + "/readyz", timeout=GUARD)
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_podman_stop_finishes_the_request_in_flight(container):
    result: dict = {}

    def slow() -> None:
        try:
            r = httpx.get(container.url + "/slow?s=2", timeout=GUARD)
            result["status"], result["body"] = r.status_code, r.text
        except httpx.HTTPError as e:
            result["error"] = repr(e)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + GUARD
    # In flight once the ready path's detail says so (answered by C++, beside the request).
    while httpx.get(container.url + "/readyz", timeout=GUARD).json()["in_flight"] < 1:
        assert time.monotonic() < deadline, "the slow request never reached the app"
        time.sleep(0.05)  # poll interval
    stop = podman("stop", "-t", "30", container.name, check=False)
    t.join(GUARD)
    assert stop.returncode == 0, stop.stderr
    assert result == {"status": 200, "body": "slow done\n"}, (result, container.logs())
    state = container.state()
    assert state["ExitCode"] == 0, (state, container.logs())
    assert "Shutting down" in container.logs()


def test_runs_the_kubernetes_config_on_a_read_only_root(image, tmp_path):
    """The pod as deploy/kubernetes/ runs it: the ConfigMap's narwhal.toml mounted and
    named by --config, the root filesystem read-only with an in-memory /tmp, user 10001.
    Only the addresses are moved to free loopback ports (flags win over the file)."""
    import yaml

    manifests = ROOT / "deploy" / "kubernetes"
    config = yaml.safe_load((manifests / "configmap.yaml").read_text())["data"]["narwhal.toml"]
    toml = tmp_path / "narwhal.toml"
    toml.write_text(config)
    toml.chmod(0o644)
    port, metrics = free_port(), free_port()
    c = Container(image, "--read-only", "--tmpfs", "/tmp", "-e", "PYTHONDONTWRITEBYTECODE=1",
                  "-v", f"{toml}:/etc/narwhal/narwhal.toml:ro,Z",
                  args=("--config", "/etc/narwhal/narwhal.toml", "--host", "127.0.0.1", "--port", str(port),
                        "--metrics-bind", f"127.0.0.1:{metrics}"), port=port)
    try:
        c.wait_serving()
        assert httpx.get(c.url + "/readyz", timeout=GUARD).json()["ready"] is True
        assert httpx.get(c.url + "/livez", timeout=GUARD).status_code == 200
        assert "narwhal_http_requests_total" in httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=GUARD).text
        assert httpx.get(c.url + "/about", timeout=GUARD).json()["uid"] == 10001
    finally:
        c.remove()
