"""What a deployment needs from the repository, checked without deploying: Streamlit
Community Cloud's requirements, and deploy/'s pieces for several replicas."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import httpx
import pytest

from deploy.render_nginx import render, route
from deploy.stack import free_port, stop_process, wait_until_up
from lora_core.settings import Settings
from tests.conftest import APP_ROOT
from tests.support.net import Answer


def requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_requirements_txt_pins_exactly_the_projects_dependencies():
    project = tomllib.loads((APP_ROOT / "pyproject.toml").read_text())["project"]

    assert requirement_lines((APP_ROOT / "requirements.txt").read_text()) == project["dependencies"]


def test_the_entry_point_is_streamlit_app_py_at_the_root():
    assert (APP_ROOT / "streamlit_app.py").is_file()
    assert (APP_ROOT / ".streamlit" / "config.toml").is_file()


def test_the_secrets_example_names_only_real_settings():
    example = (APP_ROOT / ".streamlit" / "secrets.toml.example").read_text()
    # Every commented-out `NAME = value` line, uncommented, must parse and be a setting.
    lines = [line.lstrip("# ") for line in example.splitlines()]
    assignments = [line for line in lines if "=" in line and line.split("=")[0].strip().isupper()]
    names = {line.split("=")[0].strip() for line in assignments}

    assert {"TURSO_DATABASE_URL", "TURSO_AUTH_TOKEN", "FAL_KEY", "STORAGE_BACKEND"} <= names
    assert names <= {name.upper() for name in Settings.model_fields}
    for line in assignments:
        tomllib.loads(line)  # valid TOML once uncommented


def test_every_library_the_app_imports_is_declared():
    """Not only through another package: a library imported directly is pinned directly."""
    import ast
    import importlib.metadata
    import sys

    declared = {
        re.split(r"[\[=<>]", requirement)[0].lower().replace("_", "-")
        for requirement in tomllib.loads((APP_ROOT / "pyproject.toml").read_text())["project"][
            "dependencies"
        ]
    } | {"libsql"}  # the optional replica extra, imported only when configured
    distributions = importlib.metadata.packages_distributions()
    sources = [APP_ROOT / "streamlit_app.py", APP_ROOT / "router.py"]
    for folder in ("lora_core", "ui", "app_pages"):
        sources += (APP_ROOT / folder).rglob("*.py")
    imported: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"lora_core", "ui", "__future__"}
    missing = {
        name: distributions.get(name)
        for name in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(name, [name])} & declared
    }
    assert missing == {}


def test_the_rendered_nginx_config_is_valid_for_nginx(tmp_path):
    config = render(
        listen="127.0.0.1:18500", replicas=["127.0.0.1:18501", "127.0.0.1:18502"], folder=tmp_path
    )

    checked = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-p", str(tmp_path), "-c", str(config), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    text = config.read_text()
    assert "server 127.0.0.1:18501 max_fails=2 fail_timeout=5s;" in text
    assert "{{" not in text


@pytest.fixture
def proxy(tmp_path) -> Iterator[tuple[str, list[ThreadingHTTPServer]]]:
    """nginx with the rendered configuration in front of two stand-in replicas:
    (its URL, the replicas' servers)."""
    replicas = [ThreadingHTTPServer(("127.0.0.1", 0), Answer) for _ in range(2)]
    for replica in replicas:
        threading.Thread(target=replica.serve_forever, daemon=True).start()
    port = free_port()
    config = render(
        listen=f"127.0.0.1:{port}",
        replicas=[f"127.0.0.1:{replica.server_address[1]}" for replica in replicas],
        folder=tmp_path,
    )
    nginx = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(tmp_path), "-c", str(config), "-e", "stderr"],
        stderr=subprocess.DEVNULL,
    )
    wait_until_up(f"http://127.0.0.1:{port}/", nginx, tmp_path / "error.log")
    yield f"http://127.0.0.1:{port}", replicas
    stop_process(nginx)
    for replica in replicas:
        replica.shutdown()
        replica.server_close()


def served_by(answer: httpx.Response, replicas: list[ThreadingHTTPServer]) -> int:
    """Which stand-in replica (0, 1) answered, from the header nginx adds."""
    address = answer.headers["x-lora-studio-replica"].split(", ")[-1]
    ports = [replica.server_address[1] for replica in replicas]
    return ports.index(int(address.rsplit(":", 1)[1]))


def test_new_browsers_are_spread_evenly_and_each_kept_on_its_replica(proxy):
    url, replicas = proxy
    browsers = [httpx.Client(base_url=url) for _ in range(6)]

    first = [served_by(browser.get("/"), replicas) for browser in browsers]
    cookies = [browser.cookies["lorastudio_route"] for browser in browsers]
    again = [served_by(browser.get("/"), replicas) for browser in browsers for _ in range(3)]

    assert sorted(first) == [0, 0, 0, 1, 1, 1]  # not by the luck of a hash
    assert cookies == [route(replica) for replica in first]
    assert again == [replica for replica in first for _ in range(3)]


def test_the_users_of_a_replica_that_is_down_move_and_stay_moved(proxy):
    url, replicas = proxy
    browser = httpx.Client(base_url=url)
    home = served_by(browser.get("/"), replicas)
    other = 1 - home

    replicas[home].shutdown()
    replicas[home].server_close()

    assert [served_by(browser.get("/"), replicas) for _ in range(3)] == [other] * 3
    assert browser.cookies["lorastudio_route"] == route(other)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("TURSO_DATABASE_URL", "every replica needs the shared database"),
        ("STREAMLIT_SERVER_COOKIE_SECRET", "the same for every replica"),
        ("STORAGE_BACKEND", "Replicas must share their images"),
    ],
)
def test_a_replica_refuses_to_start_without_what_replicas_share(missing, message):
    shared = {
        "TURSO_DATABASE_URL": "http://127.0.0.1:1",
        "STREAMLIT_SERVER_COOKIE_SECRET": "s",
        "STORAGE_BACKEND": "s3",
    }
    env = {"PATH": os.environ["PATH"], **shared}
    del env[missing]

    started = subprocess.run(
        ["bash", str(APP_ROOT / "deploy" / "replica.sh"), "18501"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert started.returncode != 0
    assert message in started.stderr
