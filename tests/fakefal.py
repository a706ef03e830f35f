"""A local fake of fal's queue and storage APIs over TLS on 127.0.0.1, for the real
`fal_client`.

It speaks the protocol `fal_client` uses (submit → status polls → result, cancel) for
`fal-ai/flux-lora` and `fal-ai/flux-lora-fast-training`, and its upload protocol (a CDN
token from the REST host, then the file to the CDN host), and records every request, so
tests can assert the exact body we sent. Tests script its answers through `FakeFal`
(images returned, NSFW flags, failures, queue positions, delays).
"""

from __future__ import annotations

import io
import json
import os
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from PIL import Image, ImageOps

from tests.net import free_port

APP_PATH = "/fal-ai/flux-lora"
TRAINING_PATH = "/fal-ai/flux-lora-fast-training"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Script:
    """How the fake answers the next jobs; tests change it between calls."""

    images: int = 4
    nsfw: list[bool] | None = None
    seed: int = 18446744073709551557  # > 2^63, as fal's seeds can be
    queue_positions: list[int] = field(default_factory=lambda: [1, 0])
    logs: list[str] = field(default_factory=lambda: ["Loading LoRA weights", "Denoising 28/28"])
    submit_error: tuple[int, Any] | None = None
    result_error: tuple[int, Any] | None = None
    processing_seconds: float = 0.0
    status_answer: dict[str, Any] | None = None  # answer every status poll with this
    files_missing: bool = False  # the result's image URLs answer 404
    result_body: bytes | None = None  # answer the result request with these raw bytes


class FakeFal:
    def __init__(self, server: ThreadingHTTPServer, host: str) -> None:
        self._server = server
        self.host = host
        self.lock = threading.Lock()
        self.script = Script()
        self.requests: list[Recorded] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}  # access URL path → the uploaded bytes

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def reset(self) -> None:
        with self.lock:
            self.script = Script()
            self.requests.clear()
            self.jobs.clear()
            self.uploads.clear()

    @property
    def submissions(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == APP_PATH]

    @property
    def training_submissions(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == TRAINING_PATH]

    @property
    def cancellations(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PUT" and r.path.endswith("/cancel")]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _jpeg(index: int) -> bytes:
    """A small JPEG that looks like something in a screenshot: a gradient, one per index."""
    gradient = Image.linear_gradient("L").resize((256, 256)).rotate(90 * index)
    image = ImageOps.colorize(gradient, (30, 20 + 40 * index, 90), (250, 200, 120 + 30 * index))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def _handler(fake: FakeFal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-fal-request-id", "fake")
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> str:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw  # an upload
            with fake.lock:
                fake.requests.append(Recorded(self.command, path, dict(self.headers.items()), body))
            return path

        def do_POST(self) -> None:
            path = self._record()
            if path == "/storage/auth/token":  # fal_client asks for a CDN upload token
                expires = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
                self._send(
                    200,
                    {
                        "token": "fake-cdn-token",
                        "token_type": "Bearer",
                        "base_url": fake.url,
                        "expires_at": expires,
                    },
                )
                return
            if path == "/files/upload":
                self._upload()
                return
            if path not in (APP_PATH, TRAINING_PATH):
                self._send(404, {"detail": "Not found"})
                return
            with fake.lock:
                script = fake.script
                if script.submit_error:
                    status, detail = script.submit_error
                    self._send(status, {"detail": detail})
                    return
                request_id = str(uuid.uuid4())
                fake.jobs[request_id] = {
                    "script": script,
                    "polls": 0,
                    "started": time.monotonic(),
                    "app": path,
                }
            base = f"https://{fake.host}{path}/requests/{request_id}"
            self._send(
                200,
                {
                    "request_id": request_id,
                    "response_url": base,
                    "status_url": f"{base}/status",
                    "cancel_url": f"{base}/cancel",
                },
            )

        def _upload(self) -> None:
            recorded = fake.requests[-1]
            if recorded.headers.get("Authorization") != "Bearer fake-cdn-token":
                self._send(401, {"detail": "Invalid upload token"})
                return
            name = recorded.headers.get("X-Fal-File-Name", "upload.bin")
            access_path = f"/files/uploads/{uuid.uuid4().hex}/{name}"
            with fake.lock:
                fake.uploads[access_path] = recorded.body
            self._send(200, {"access_url": f"{fake.url}{access_path}"})

        def do_HEAD(self) -> None:
            """Files (e.g. trained weights) answer HEAD, as a CDN does."""
            path = self._record()
            missing = fake.script.files_missing or not path.startswith("/files/")
            self.send_response(404 if missing else 200)
            self.send_header("Content-Length", "0" if missing else "1024")
            self.end_headers()

        def do_PUT(self) -> None:
            self._record()
            self._send(202, {"status": "CANCELLATION_REQUESTED"})

        def do_GET(self) -> None:
            path = self._record()
            if path in fake.uploads:
                self._send(200, fake.uploads[path], content_type="application/zip")
                return
            if path.startswith("/files/"):
                if fake.script.files_missing:
                    self._send(404, {"detail": "Not found"})
                    return
                index = int(path.rsplit("/", 1)[-1].split(".")[0])
                self._send(200, _jpeg(index), content_type="image/jpeg")
                return
            parts = path.split("/requests/", 1)[-1].split("/")
            with fake.lock:
                job = fake.jobs.get(parts[0])
                if job is None:
                    self._send(404, {"detail": "Request not found"})
                    return
                script: Script = job["script"]
                if len(parts) == 2 and parts[1] == "status":
                    self._send(200, self._status(job, script))
                    return
            if script.result_error:
                status, detail = script.result_error
                self._send(status, {"detail": detail})
                return
            if script.result_body is not None:
                self._send(200, script.result_body)
                return
            if job["app"] == TRAINING_PATH:
                self._send(200, self._training_result(parts[0]))
                return
            self._send(200, self._result(parts[0], script))

        def _status(self, job: dict[str, Any], script: Script) -> dict[str, Any]:
            if script.status_answer is not None:
                return script.status_answer
            polls = job["polls"]
            job["polls"] += 1
            if polls < len(script.queue_positions):
                return {"status": "IN_QUEUE", "queue_position": script.queue_positions[polls]}
            logs = [{"message": line, "level": "INFO"} for line in script.logs]
            running = time.monotonic() - job["started"] < script.processing_seconds
            # With no processing time, still show one "in progress" poll after the queue.
            if running or (not script.processing_seconds and polls == len(script.queue_positions)):
                return {"status": "IN_PROGRESS", "logs": logs}
            return {"status": "COMPLETED", "logs": logs, "metrics": {"inference_time": 1.0}}

        def _training_result(self, request_id: str) -> dict[str, Any]:
            files = f"{fake.url}/files/{request_id}"
            return {
                "diffusers_lora_file": {
                    "url": f"{files}/pytorch_lora_weights.safetensors",
                    "content_type": "application/octet-stream",
                    "file_name": "pytorch_lora_weights.safetensors",
                },
                "config_file": {"url": f"{files}/config.json", "content_type": "application/json"},
            }

        def _result(self, request_id: str, script: Script) -> dict[str, Any]:
            images = [
                {
                    "url": f"https://{fake.host}/files/{request_id}/{index}.jpg",
                    "width": 1024,
                    "height": 1024,
                    "content_type": "image/jpeg",
                }
                for index in range(script.images)
            ]
            return {
                "images": images,
                "seed": script.seed,
                "has_nsfw_concepts": script.nsfw or [False] * script.images,
                "prompt": "",
                "timings": {"inference": 1.0},
            }

    return Handler


@dataclass(frozen=True)
class FakeFalAddress:
    """Where the fake will listen, and the throwaway CA its certificate comes from."""

    port: int
    ca: trustme.CA

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def point_fal_client_at_a_fake() -> FakeFalAddress:
    """Choose the fake's port and CA and point `fal_client` at it through the environment
    (`FAL_RUN_HOST`, `FAL_QUEUE_RUN_HOST`; httpx trusts `SSL_CERT_FILE`). Call it before
    `fal_client` is first imported: it reads its hosts once. Its upload hosts are constants:
    see `point_fal_uploads_at`."""
    address = FakeFalAddress(free_port(), trustme.CA())
    ca_file = Path(tempfile.mkdtemp(prefix="fake-fal-ca-")) / "ca.pem"
    address.ca.cert_pem.write_to_path(str(ca_file))
    os.environ["FAL_RUN_HOST"] = os.environ["FAL_QUEUE_RUN_HOST"] = f"127.0.0.1:{address.port}"
    os.environ["SSL_CERT_FILE"] = str(ca_file)
    return address


def point_fal_uploads_at(url: str) -> None:
    """fal_client's upload hosts (a token from the REST host, the file to the CDN host)."""
    import fal_client.client

    fal_client.client.REST_URL = fal_client.client.CDN_URL = url


def start_fake_fal(port: int, ca: trustme.CA) -> FakeFal:
    """Serve the fake on 127.0.0.1:`port` with a certificate from the test CA `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    fake = FakeFal(server, f"127.0.0.1:{port}")
    server.RequestHandlerClass = _handler(fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake
