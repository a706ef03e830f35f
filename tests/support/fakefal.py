"""A local fake of fal's queue and storage APIs over TLS on 127.0.0.1, for the real
`fal_client`, behaving as fal documents and as fal_client 1.0.3 reads it.

Queue (`fal-ai/flux-lora`, `fal-ai/flux-lora-fast-training`):
- submit → `{request_id, response_url, status_url, cancel_url}`; fal's own answers carry
  `x-fal-request-id` (fal_client takes its absence on a 5xx for a gateway error);
- status → 202 while `IN_QUEUE` (`queue_position`) or `IN_PROGRESS`, 200 when `COMPLETED`
  (`metrics`); every body carries `request_id` and the three URLs, and `logs` is null
  unless `?logs=1` (or `true`) was asked for;
- a failed job ends `COMPLETED` with `error`/`error_type`, and its result answers that
  error as fal's docs give its two shapes: a request error (`{detail, error_type}` and
  `X-Fal-Error-Type`, e.g. `request_timeout` 504, `runner_server_error` 500: "Request
  errors", https://docs.fal.ai/documentation/model-apis/request-errors) or a model error
  (422, `detail[]` of `{loc, msg, type, url, ctx, input}` and `X-Fal-Retryable`: "Model
  errors", https://docs.fal.ai/errors), such as `file_download_error` for LoRA weights
  that do not download or `content_policy_violation`;
- arguments flux-lora's schema refuses fail the job with a model error (422, `loc` such as
  `["body", "loras", 0, "scale"]`): the queue takes any JSON, the model checks it;
- flux-lora returns every image asked for; those its safety checker flags are black and
  `has_nsfw_concepts[i]` is true (fal-ai/flux-lora's output schema);
- a request is kept for a limited time (fal's docs: one hour by default), after which its
  status and result answer fal's own 404 (`result_expires_after`);
- cancel: a queued job is removed (it then reports `client_cancelled`), a running one
  may still finish (`finish_despite_cancel`), a finished one answers 400
  `ALREADY_COMPLETED`, an unknown id 404; `X-Fal-Request-Timeout` ends a job still queued
  after that many seconds with `request_timeout`.
Storage: the CDN token, the v3 upload, fal_client's fallback when it fails
(`storage/upload/initiate` + PUT to a signed URL) and multipart uploads (initiate, parts
with ETags, complete); files (images, trained weights) are served back.
Trouble, each switchable per test through `Script`: gateway 502/503/504 without
`x-fal-request-id` (with or without nginx's page), an outage after a submit (every queue
request answered by the gateway's 503 page for a while: `outage_after_submit`), a submit
recorded whose answer is dropped, breaks off in its body or cannot be read, a 429 refusal,
answers that stall, a refused key at the token endpoint, an expired file, and (as fal's
runner) LoRA weights that do not download.

Every request is recorded, so tests assert exactly what was sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import trustme
from PIL import Image, ImageOps

from tests.support.net import free_port

APP_PATH = "/fal-ai/flux-lora"
TRAINING_PATH = "/fal-ai/flux-lora-fast-training"
APPS = (APP_PATH, TRAINING_PATH)
GATEWAY_PAGE = (
    "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
WEIGHTS_NAME = "pytorch_lora_weights.safetensors"


def weights_bytes(request_id: str) -> bytes:
    """The trained weights the fake serves for a training job: distinct per job."""
    return b"SAFETENSORS" + hashlib.sha256(request_id.encode()).digest() * 64


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, list[str]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class JobFailure:
    """How a job fails on fal's side: its status body's `error`/`error_type`, and the
    error its result URL answers: a request error (`detail` text and `error_type`), or a
    model error (`detail` a list of items, status 422, no `error_type`)."""

    detail: str | list[dict[str, Any]] = "Runner crashed while generating"
    error_type: str | None = "runner_server_error"
    status_code: int = 500

    @property
    def text(self) -> str:
        """The status body's `error`: the text, or the items' messages."""
        if isinstance(self.detail, list):
            return "; ".join(str(item.get("msg", "")) for item in self.detail)
        return self.detail


def model_error(
    loc: list[Any], msg: str, kind: str, *, value: Any = None, ctx: dict | None = None
) -> dict[str, Any]:
    """One item of a model error's `detail[]`, with every field fal's docs list."""
    return {
        "loc": loc,
        "msg": msg,
        "type": kind,
        "url": f"https://docs.fal.ai/errors#{kind}",
        "ctx": ctx or {},
        "input": value,
    }


@dataclass
class Script:
    """How the fake answers the next jobs; tests change it between calls."""

    # None: every image asked for, as fal returns them; a number: fewer (an odd answer).
    images: int | None = None
    nsfw: list[bool] | None = None  # per image: flagged by the safety checker (sent black)
    seed: int = 18446744073709551557  # > 2^63, as fal's seeds can be
    queue_positions: list[int] = field(default_factory=lambda: [1, 0])
    logs: list[str] = field(default_factory=lambda: ["Loading LoRA weights", "Denoising 28/28"])
    processing_seconds: float = 0.0
    # fal refuses the submit itself (its own answer: no job).
    submit_error: tuple[int, Any] | None = None
    # The job fails on fal: COMPLETED with an error, and its result answers the error.
    job_failure: JobFailure | None = None
    # Only the jobs whose prompt contains a key fail, with its failure (one job of many).
    prompt_failures: dict[str, JobFailure] = field(default_factory=dict)
    # COMPLETED without an error, but the result URL answers this error (fal's own answer).
    result_error: tuple[int, Any] | None = None
    status_answer: dict[str, Any] | None = None  # answer every status poll with this
    result_body: bytes | None = None  # answer the result request with these raw bytes
    files_missing: bool = False  # files (images, weights) answer 404: expired
    # A job cancelled while running still finishes, as fal may let it.
    finish_despite_cancel: bool = True
    # Trouble before fal: per endpoint ("submit", "status", "result", "cancel"), gateway
    # statuses answered in turn, without `x-fal-request-id`, before fal's own answers.
    gateway_errors: dict[str, list[int]] = field(default_factory=dict)
    # The next N submits are recorded (their jobs exist), then the connection closes
    # without an answer.
    dropped_submit_answers: int = 0
    # The next N submits are refused with 429 (fal's rate limit: no job).
    rate_limited_submits: int = 0
    # Per endpoint, seconds to wait before answering (a poll that times out, say).
    stall: dict[str, float] = field(default_factory=dict)
    # The gateway's error page names nginx (fal_client retries those; not other pages).
    gateway_says_nginx: bool = True
    # The next N submits are recorded, then their answer breaks off in the body.
    broken_submit_answers: int = 0
    # Jobs fetch each `loras[].path`, as fal does; one that does not download fails the job.
    fetch_loras: bool = False
    # Uploads: the CDN token endpoint refuses the key; the v3 CDN refuses the file (so
    # fal_client falls back to storage/upload/initiate).
    cdn_token_error: int | None = None
    cdn_upload_error: int | None = None
    # A request's status and result answer fal's own 404 this many seconds after the job
    # finished (a job nobody polls finishes `processing_seconds` after its submit when it
    # waits in no queue: `queue_positions` empty).
    result_expires_after: float | None = None
    # After each accepted submit, every queue request (submit, status, result, cancel)
    # gets the gateway's 503 page, without `x-fal-request-id`, for this many seconds.
    outage_after_submit: float = 0.0
    # The next N submits are recorded (their jobs exist), then answered 200 with a body
    # that is not JSON.
    unreadable_submit_answers: int = 0


@dataclass
class Job:
    request_id: str
    app: str
    script: Script
    submitted: float = field(default_factory=time.monotonic)
    start_timeout: float | None = None
    arguments: dict[str, Any] = field(default_factory=dict)  # what was submitted
    polls: int = 0
    running_since: float | None = None
    cancelled: bool = False  # cancelled before it ran, or ended by the cancel
    finished: bool = False
    finished_at: float | None = None
    flagged: frozenset[int] = frozenset()  # images the safety checker flagged (sent black)

    def done_at(self) -> float | None:
        """When the job finished: as seen by a poll, or, for a job waiting in no queue,
        `processing_seconds` after its submit whether anyone polls or not."""
        if self.finished_at is not None:
            return self.finished_at
        if not self.script.queue_positions and not self.cancelled:
            return self.submitted + self.script.processing_seconds
        return None

    def expired(self) -> bool:
        ttl = self.script.result_expires_after
        done = self.done_at()
        return ttl is not None and done is not None and time.monotonic() > done + ttl


class FakeFal:
    def __init__(self, server: ThreadingHTTPServer, host: str) -> None:
        self._server = server
        self.host = host
        self.lock = threading.Lock()
        self.script = Script()
        self.requests: list[Recorded] = []
        self.jobs: dict[str, Job] = {}
        self.uploads: dict[str, bytes] = {}  # file path → the uploaded bytes
        self._signed: dict[str, str] = {}  # signed upload path → the file path it fills
        self._multipart: dict[str, dict[int, bytes]] = {}  # upload id → parts
        self.epoch = 0  # bumped by reset(): a request of an earlier test ends unanswered
        self.fetched: list[tuple[str, int]] = []  # (LoRA path, HTTP status) fetched by jobs
        self.outage_until = 0.0  # the gateway answers 503 for every queue request until

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def reset(self) -> None:
        with self.lock:
            self.script = Script()
            self.requests.clear()
            self.jobs.clear()
            self.uploads.clear()
            self._signed.clear()
            self._multipart.clear()
            self.fetched.clear()
            self.outage_until = 0.0
            self.epoch += 1

    def _of(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def submissions(self) -> list[Recorded]:
        return self._of("POST", APP_PATH)

    @property
    def training_submissions(self) -> list[Recorded]:
        return self._of("POST", TRAINING_PATH)

    @property
    def cancellations(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PUT" and r.path.endswith("/cancel")]

    @property
    def status_polls(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/status")]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


IMAGES = 4
# fal-ai/flux-lora's image size presets (fal's documentation).
FLUX_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# fal's schema for the arguments the app sends: field -> (low, high).
FLUX_RANGES = {"num_inference_steps": (1, 50), "guidance_scale": (0, 35), "num_images": (1, 4)}


def _invalid_flux_arguments(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """fal's 422 `detail` for arguments its schema refuses (Pydantic's error list)."""
    errors = []
    for name, (low, high) in FLUX_RANGES.items():
        value = arguments.get(name)
        if value is not None and not low <= value <= high:
            errors.append(
                model_error(["body", name], f"Input should be between {low} and {high}",
                            "value_error", value=value)
            )  # fmt: skip
    size = arguments.get("image_size")
    if size is not None and not isinstance(size, dict) and size not in FLUX_SIZES:
        errors.append(model_error(["body", "image_size"], "Invalid size", "enum", value=size))
    for index, lora in enumerate(arguments.get("loras", [])):
        scale = lora.get("scale", 1)
        if not 0 <= scale <= 4:
            errors.append(
                model_error(
                    ["body", "loras", index, "scale"],
                    "Input should be less than or equal to 4",
                    "less_than_equal",
                    value=scale,
                    ctx={"le": 4},
                )
            )
    return errors


def _etag(data: bytes) -> str:
    """An ETag as S3-style stores give a part: its MD5, quoted."""
    return f'"{hashlib.md5(data).hexdigest()}"'


def _jpeg(index: int) -> bytes:
    """A small JPEG that looks like something in a screenshot: a gradient, one per index."""
    gradient = Image.linear_gradient("L").resize((256, 256)).rotate(90 * index)
    image = ImageOps.colorize(gradient, (30, 20 + 40 * index, 90), (250, 200, 120 + 30 * index))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def _black_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256)).save(buffer, format="JPEG")
    return buffer.getvalue()


class _Dropped(Exception):
    """Close the connection without an answer."""


def _handler(fake: FakeFal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm holds
            # the second for the client's delayed ACK (~40 ms a request on a kept-alive
            # connection). fal's servers answer at once.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        # --- plumbing -------------------------------------------------------------------

        def _send(
            self,
            status: int,
            payload: Any,
            content_type: str = "application/json",
            *,
            from_fal: bool = True,
            headers: dict[str, str] | None = None,
        ) -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if from_fal:
                self.send_header("x-fal-request-id", "fake")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _gateway_error(self, endpoint: str) -> bool:
            """Answer a queued gateway error for `endpoint`, if the script has one, or the
            gateway's 503 during an outage."""
            with fake.lock:
                pending = fake.script.gateway_errors.get(endpoint) or []
                status = pending.pop(0) if pending else None
                if status is None and time.monotonic() < fake.outage_until:
                    status = 503
            if status is None:
                return False
            page = GATEWAY_PAGE.format(f"{status} Bad Gateway").encode()
            if not fake.script.gateway_says_nginx:
                page = f"<html><body>{status} upstream error</body></html>".encode()
            self._send(status, page, "text/html", from_fal=False)
            return True

        def _stall(self, endpoint: str) -> None:
            """Wait before answering; a test that ended meanwhile gets no answer (and its
            request touches nothing of the next test's)."""
            epoch, seconds = fake.epoch, fake.script.stall.get(endpoint, 0.0)
            if seconds:
                time.sleep(seconds)
                if fake.epoch != epoch:
                    raise _Dropped

        def _record(self) -> tuple[str, dict[str, list[str]], Recorded]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw  # an upload
            query = parse_qs(parts.query)
            recorded = Recorded(self.command, parts.path, dict(self.headers.items()), body, query)
            with fake.lock:
                fake.requests.append(recorded)
            return parts.path, query, recorded

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except _Dropped:
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self.close_connection = True  # the client gave up waiting

        # --- routes ---------------------------------------------------------------------

        def do_POST(self) -> None:
            path, _query, recorded = self._record()
            if path == "/storage/auth/token":
                self._token()
            elif path == "/files/upload":
                self._cdn_upload(recorded)
            elif path == "/files/upload/multipart":
                self._multipart_start(recorded)
            elif path.endswith("/complete") and "/multipart/" in path:
                self._multipart_complete(path, recorded)
            elif path == "/storage/upload/initiate":
                self._initiate(recorded)
            elif path in APPS:
                self._submit(path, recorded)
            else:
                self._send(404, {"detail": "Not found"})

        def do_PUT(self) -> None:
            path, _query, recorded = self._record()
            if path.endswith("/cancel"):
                self._cancel(path)
            elif path in fake._signed:
                with fake.lock:
                    fake.uploads[fake._signed.pop(path)] = recorded.body
                self._send(200, b"", "text/plain", from_fal=False)
            elif "/multipart/" in path:
                self._multipart_part(path, recorded)
            else:
                self._send(404, {"detail": "Not found"})

        def do_GET(self) -> None:
            path, query, _recorded = self._record()
            if path.startswith("/files/"):
                self._file(path)
                return
            request_id, _, rest = path.split("/requests/", 1)[-1].partition("/")
            with fake.lock:
                job = fake.jobs.get(request_id)
            if rest == "status":
                if self._gateway_error("status"):
                    return
                self._stall("status")
                if job is None or job.expired():
                    self._send(404, {"detail": "Request not found"})
                    return
                self._status(job, with_logs=query.get("logs", ["0"])[0] in ("1", "true"))
                return
            if self._gateway_error("result"):
                return
            self._stall("result")
            if job is None or job.expired():
                self._send(404, {"detail": "Request not found"})
                return
            self._result(job)

        def do_HEAD(self) -> None:
            """Files (e.g. trained weights) answer HEAD, as a CDN does."""
            path, _query, _recorded = self._record()
            content = self._file_content(path)
            status = 404 if content is None else 200
            self.send_response(status)
            self.send_header("Content-Length", "0" if content is None else str(len(content)))
            self.end_headers()

        # --- queue ----------------------------------------------------------------------

        def _urls(self, job: Job) -> dict[str, str]:
            base = f"{fake.url}{job.app}/requests/{job.request_id}"
            return {
                "request_id": job.request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
            }

        def _submit(self, path: str, recorded: Recorded) -> None:
            if self._gateway_error("submit"):
                return
            self._stall("submit")
            with fake.lock:
                script = fake.script
                if script.rate_limited_submits:
                    script.rate_limited_submits -= 1
                    self._send(429, {"detail": "Too many concurrent requests"})
                    return
                if script.submit_error:
                    status, detail = script.submit_error
                    self._send(status, {"detail": detail})
                    return
                timeout = recorded.headers.get("X-Fal-Request-Timeout")
                arguments = recorded.body if isinstance(recorded.body, dict) else {}
                job = Job(
                    request_id=str(uuid.uuid4()),
                    app=path,
                    script=script,
                    start_timeout=float(timeout) if timeout else None,
                    arguments=arguments,
                )
                if path == APP_PATH and (invalid := _invalid_flux_arguments(arguments)):
                    # The queue takes any JSON; the model refuses it as it runs.
                    job.script = replace(script, job_failure=JobFailure(invalid, None, 422))
                fake.jobs[job.request_id] = job
                if script.outage_after_submit:
                    fake.outage_until = time.monotonic() + script.outage_after_submit
            with fake.lock:
                dropped = script.dropped_submit_answers > 0
                script.dropped_submit_answers -= dropped
                broken = script.broken_submit_answers > 0
                script.broken_submit_answers -= broken
                unreadable = script.unreadable_submit_answers > 0
                script.unreadable_submit_answers -= unreadable
            if script.fetch_loras and path == APP_PATH:
                self._fetch_loras(job, recorded.body)
            if dropped:
                raise _Dropped
            if unreadable:
                self._send(200, b"<html><body>OK</body></html>", "text/html")
                return
            answer = {**self._urls(job), "status": "IN_QUEUE", "queue_position": 0}
            if broken:  # the headers promise a body that never fully arrives
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-fal-request-id", "fake")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                raise _Dropped
            self._send(200, answer)

        def _fetch_loras(self, job: Job, arguments: Any) -> None:
            """Download each LoRA as fal's runner would; a failed one fails the job as fal
            reports it (`COMPLETED` with the download error)."""
            for index, lora in enumerate((arguments or {}).get("loras", [])):
                try:
                    with httpx.Client(timeout=5) as client:  # trusts the test CA (SSL_CERT_FILE)
                        status = client.get(lora["path"]).status_code
                except httpx.HTTPError:
                    status = 0
                with fake.lock:
                    fake.fetched.append((lora["path"], status))
                if not 200 <= status < 300:
                    item = model_error(
                        ["body", "loras", index, "path"],
                        "Failed to download the file. Please check if the URL is accessible.",
                        "file_download_error",
                        value=lora["path"],
                    )
                    job.script = replace(job.script, job_failure=JobFailure([item], None, 422))

        def _state(self, job: Job) -> tuple[str, int | None]:
            """The job's stage at this poll: (status, queue position). It waits in the queue
            for one poll per scripted position, then runs for `processing_seconds` from its
            submission, whether anyone polls or not (a zero-second job still shows one
            "in progress" poll)."""
            script = job.script
            if job.finished or job.cancelled:
                return "COMPLETED", None
            polls, job.polls = job.polls, job.polls + 1
            if polls < len(script.queue_positions):
                waited = time.monotonic() - job.submitted
                if job.start_timeout is not None and waited > job.start_timeout:
                    job.finished = True  # fal gave up on it before it started
                    job.finished_at = time.monotonic()
                    return "COMPLETED", None
                return "IN_QUEUE", script.queue_positions[polls]
            first_run = job.running_since is None
            if first_run:
                job.running_since = time.monotonic()
            running = time.monotonic() - job.submitted < script.processing_seconds
            if running or (not script.processing_seconds and first_run):
                return "IN_PROGRESS", None
            if not job.finished:
                job.finished = True
                job.finished_at = time.monotonic()
            return "COMPLETED", None

        def _failure(self, job: Job) -> JobFailure | None:
            if job.cancelled:
                return JobFailure("Request cancelled by client", "client_cancelled", 499)
            if job.start_timeout is not None and job.running_since is None and job.finished:
                return JobFailure("Request timed out", "request_timeout", 504)
            prompt = str(job.arguments.get("prompt", ""))
            for word, failure in job.script.prompt_failures.items():
                if word in prompt:
                    return failure
            return job.script.job_failure

        def _status(self, job: Job, *, with_logs: bool) -> None:
            script = job.script
            if script.status_answer is not None:
                self._send(200, script.status_answer)
                return
            with fake.lock:
                stage, position = self._state(job)
            body: dict[str, Any] = {**self._urls(job), "status": stage}
            logs = [{"message": line, "level": "INFO", "source": "user"} for line in script.logs]
            if stage == "IN_QUEUE":
                body["queue_position"] = position
            body["logs"] = logs if with_logs and job.running_since is not None else None
            if with_logs and stage == "IN_QUEUE":
                body["logs"] = []
            if stage == "COMPLETED":
                body["metrics"] = {"inference_time": 1.0}
                failure = self._failure(job)
                if failure is not None:
                    body["error"] = failure.text
                    if failure.error_type is not None:
                        body["error_type"] = failure.error_type
                self._send(200, body)
                return
            body["metrics"] = {}
            self._send(202, body)

        def _result(self, job: Job) -> None:
            script = job.script
            if not (job.finished or job.cancelled):
                self._send(400, {"detail": "Request is still in progress"})
                return
            failure = self._failure(job)
            if isinstance(failure, JobFailure) and isinstance(failure.detail, list):
                # A model error: `detail[]` only, and whether trying again may help.
                self._send(
                    failure.status_code,
                    {"detail": failure.detail},
                    headers={"X-Fal-Retryable": "false"},
                )
                return
            if failure is not None:
                self._send(
                    failure.status_code,
                    {"detail": failure.detail, "error_type": failure.error_type},
                    headers={"X-Fal-Error-Type": str(failure.error_type)},
                )
                return
            if script.result_error:
                status, detail = script.result_error
                self._send(status, {"detail": detail})
                return
            if script.result_body is not None:
                self._send(200, script.result_body)
                return
            if job.app == TRAINING_PATH:
                self._send(200, self._training_result(job.request_id))
                return
            self._send(200, self._images_result(job, script))

        def _cancel(self, path: str) -> None:
            if self._gateway_error("cancel"):
                return
            request_id = path.split("/requests/", 1)[-1].split("/")[0]
            with fake.lock:
                job = fake.jobs.get(request_id)
                if job is None:
                    self._send(404, {"status": "NOT_FOUND"})
                    return
                if job.finished or job.cancelled:
                    self._send(400, {"status": "ALREADY_COMPLETED"})
                    return
                queued = job.running_since is None and job.script.queue_positions
                if queued or not job.script.finish_despite_cancel:
                    job.cancelled = True  # removed from the queue / stopped by the runner
            self._send(202, {"status": "CANCELLATION_REQUESTED"})

        def _training_result(self, request_id: str) -> dict[str, Any]:
            files = f"{fake.url}/files/{request_id}"
            return {
                "diffusers_lora_file": {
                    "url": f"{files}/{WEIGHTS_NAME}",
                    "content_type": "application/octet-stream",
                    "file_name": WEIGHTS_NAME,
                    "file_size": len(weights_bytes(request_id)),
                },
                "config_file": {
                    "url": f"{files}/config.json",
                    "content_type": "application/json",
                    "file_name": "config.json",
                },
            }

        def _images_result(self, job: Job, script: Script) -> dict[str, Any]:
            """As fal answers: the size asked for, every image asked for (or, scripted, an
            odd answer with fewer), those the safety checker flagged black with their flag
            in `has_nsfw_concepts`, and ONE seed for the call: the one asked for, else the
            script's."""
            width, height = FLUX_SIZES.get(job.arguments.get("image_size", ""), (1024, 1024))
            asked = int(job.arguments.get("num_images", IMAGES))
            count = asked if script.images is None else min(script.images, asked)
            flags = [bool(flag) for flag in (script.nsfw or [])[:count]]
            flags += [False] * (count - len(flags))
            with fake.lock:
                job.flagged = frozenset(index for index, flag in enumerate(flags) if flag)
            images = [
                {
                    "url": f"{fake.url}/files/{job.request_id}/{index}.jpg",
                    "width": width,
                    "height": height,
                    "content_type": "image/jpeg",
                }
                for index in range(count)
            ]
            return {
                "images": images,
                "seed": job.arguments.get("seed", script.seed),
                "has_nsfw_concepts": flags,
                "prompt": "",
                "timings": {"inference": 1.0},
            }

        # --- files and uploads ----------------------------------------------------------

        def _file_content(self, path: str) -> bytes | None:
            if fake.script.files_missing:
                return None
            with fake.lock:
                if path in fake.uploads:
                    return fake.uploads[path]
            if not path.startswith("/files/"):
                return None
            folder, _, name = path.removeprefix("/files/").rpartition("/")
            if name == WEIGHTS_NAME:
                return weights_bytes(folder)
            if name == "config.json":
                return json.dumps({"trained_from": folder}).encode()
            stem = name.split(".")[0]
            if not stem.isdigit():
                return None
            with fake.lock:
                job = fake.jobs.get(folder)
            if job is not None and int(stem) in job.flagged:
                return _black_jpeg()  # as fal sends an image its safety checker flagged
            return _jpeg(int(stem))

        def _file(self, path: str) -> None:
            content = self._file_content(path)
            if content is None:
                self._send(404, {"detail": "Not found"})
                return
            kind = "image/jpeg" if path.endswith(".jpg") else "application/octet-stream"
            self._send(200, content, kind, from_fal=False)

        def _token(self) -> None:
            if fake.script.cdn_token_error:
                self._send(fake.script.cdn_token_error, {"detail": "Invalid API key"})
                return
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

        def _cdn_authorized(self, recorded: Recorded) -> bool:
            if recorded.headers.get("Authorization") != "Bearer fake-cdn-token":
                self._send(401, {"detail": "Invalid upload token"})
                return False
            return True

        def _new_file_path(self, name: str) -> str:
            return f"/files/uploads/{uuid.uuid4().hex}/{name}"

        def _cdn_upload(self, recorded: Recorded) -> None:
            if not self._cdn_authorized(recorded):
                return
            if fake.script.cdn_upload_error:
                self._send(fake.script.cdn_upload_error, {"detail": "CDN upload failed"})
                return
            file_path = self._new_file_path(recorded.headers.get("X-Fal-File-Name", "upload.bin"))
            with fake.lock:
                fake.uploads[file_path] = recorded.body
            self._send(200, {"access_url": f"{fake.url}{file_path}"})

        def _initiate(self, recorded: Recorded) -> None:
            """fal_client's fallback: a signed URL to PUT the file to, and the file's URL."""
            if not str(recorded.headers.get("Authorization", "")).startswith("Key "):
                self._send(401, {"detail": "Missing key"})
                return
            file_path = self._new_file_path((recorded.body or {}).get("file_name", "upload.bin"))
            signed = f"/storage/signed/{uuid.uuid4().hex}"
            with fake.lock:
                fake._signed[signed] = file_path
            self._send(
                200,
                {
                    "upload_url": f"{fake.url}{signed}?X-Goog-Signature=fake",
                    "file_url": f"{fake.url}{file_path}",
                },
            )

        def _multipart_start(self, recorded: Recorded) -> None:
            if not self._cdn_authorized(recorded):
                return
            upload_id = uuid.uuid4().hex
            file_path = self._new_file_path(recorded.headers.get("X-Fal-File-Name", "upload.bin"))
            with fake.lock:
                fake._multipart[upload_id] = {}
            self._send(200, {"access_url": f"{fake.url}{file_path}", "uploadId": upload_id})

        def _multipart_part(self, path: str, recorded: Recorded) -> None:
            if not self._cdn_authorized(recorded):
                return
            _file_path, _, rest = path.partition("/multipart/")
            upload_id, _, number = rest.partition("/")
            data = recorded.body if isinstance(recorded.body, bytes) else b""
            with fake.lock:
                parts = fake._multipart.get(upload_id)
                if parts is None:
                    self._send(404, {"detail": "Unknown upload"})
                    return
                parts[int(number)] = data
            self._send(200, b"", "text/plain", headers={"ETag": _etag(data)})

        def _multipart_complete(self, path: str, recorded: Recorded) -> None:
            if not self._cdn_authorized(recorded):
                return
            file_path, _, rest = path.partition("/multipart/")
            upload_id = rest.split("/")[0]
            listed = sorted((recorded.body or {}).get("parts", []), key=lambda p: p["partNumber"])
            with fake.lock:
                parts = fake._multipart.pop(upload_id, None) or {}
                numbers = [part["partNumber"] for part in listed]
                matching = numbers == sorted(parts) and all(
                    part["etag"] == _etag(parts[part["partNumber"]]) for part in listed
                )
                if not parts or not matching:
                    self._send(400, {"detail": "Parts do not match the upload"})
                    return
                fake.uploads[file_path] = b"".join(parts[number] for number in numbers)
            self._send(200, {"access_url": f"{fake.url}{file_path}"})

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


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a timeout test) is not an error worth a traceback


def start_fake_fal(port: int, ca: trustme.CA) -> FakeFal:
    """Serve the fake on 127.0.0.1:`port` with a certificate from the test CA `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = _QuietServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    fake = FakeFal(server, f"127.0.0.1:{port}")
    server.RequestHandlerClass = _handler(fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake
