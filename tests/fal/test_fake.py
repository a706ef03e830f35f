"""The fake fal behaves as fal does, as the real `fal_client` sees it: failed jobs, status
bodies, cancels, the three upload paths, and the trouble fal's clients must survive.
(What the app makes of each is tested with the app: test_generator, test_trainer, …)"""

from __future__ import annotations

import io
import time

import fal_client
import fal_client.client
import httpx
import pytest
from PIL import Image

from tests.conftest import TEST_FAL_KEY
from tests.support.fakefal import APP_PATH, FakeFal, JobFailure

APP = "fal-ai/flux-lora"


@pytest.fixture
def client(fake_fal: FakeFal) -> fal_client.SyncClient:
    """fal_client exactly as fal ships it (its own retries and all)."""
    return fal_client.SyncClient(key=TEST_FAL_KEY)


def raw(fake_fal: FakeFal, path: str, **params) -> httpx.Response:
    """An HTTP answer as it comes off the wire (fal_client hides status codes)."""
    with httpx.Client() as http:
        return http.get(f"{fake_fal.url}{path}", params=params)


def finished(handle: fal_client.SyncRequestHandle) -> fal_client.Completed:
    for status in handle.iter_events(interval=0.01):
        last = status
    assert isinstance(last, fal_client.Completed)
    return last


def test_a_failed_job_completes_with_its_error_and_its_result_answers_it(client, fake_fal):
    fake_fal.script.job_failure = JobFailure("Out of memory", "runner_server_error", 500)
    handle = client.submit(APP, arguments={})

    status = finished(handle)

    assert (status.error, status.error_type) == ("Out of memory", "runner_server_error")
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 500
    assert caught.value.error_type == "runner_server_error"
    assert caught.value.response_headers["x-fal-request-id"]  # fal's own answer


def test_status_bodies_carry_the_urls_and_logs_only_when_asked(client, fake_fal):
    fake_fal.script.queue_positions = [2]
    handle = client.submit(APP, arguments={})
    path = f"{APP_PATH}/requests/{handle.request_id}/status"

    queued = raw(fake_fal, path)
    running = raw(fake_fal, path, logs=1)
    done = raw(fake_fal, path)

    assert queued.status_code == 202 and queued.json()["queue_position"] == 2
    for answer in (queued, running, done):
        body = answer.json()
        assert body["request_id"] == handle.request_id
        assert body["status_url"] == handle.status_url
        assert {body["response_url"], body["cancel_url"]} == {
            handle.response_url,
            handle.cancel_url,
        }
    assert running.status_code == 202 and running.json()["logs"][0]["message"]
    assert done.status_code == 200 and done.json()["logs"] is None
    assert done.json()["metrics"]["inference_time"] > 0
    assert isinstance(client.status(APP, handle.request_id), fal_client.Completed)


def test_cancel_removes_a_queued_job_which_then_reports_client_cancelled(client, fake_fal):
    fake_fal.script.queue_positions = [5, 4, 3]
    handle = client.submit(APP, arguments={})

    handle.cancel()

    status = handle.status()
    assert isinstance(status, fal_client.Completed)
    assert status.error_type == "client_cancelled"
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 499


@pytest.mark.parametrize("finishes", [True, False])
def test_a_running_job_may_still_finish_after_a_cancel(client, fake_fal, finishes):
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = 1.0
    fake_fal.script.finish_despite_cancel = finishes
    handle = client.submit(APP, arguments={})
    assert isinstance(handle.status(), fal_client.InProgress)

    handle.cancel()
    time.sleep(1.05)

    status = finished(handle)
    if finishes:
        assert status.error is None and len(handle.get()["images"]) == 4
    else:
        assert status.error_type == "client_cancelled"


def test_cancelling_a_finished_or_unknown_job_answers_an_error(client, fake_fal):
    handle = client.submit(APP, arguments={})
    finished(handle)

    with pytest.raises(fal_client.client.FalClientHTTPError) as done:
        handle.cancel()
    with pytest.raises(fal_client.client.FalClientHTTPError) as unknown:
        client.cancel(APP, "no-such-request")

    assert done.value.status_code == 400
    assert unknown.value.status_code == 404


def test_a_job_still_queued_after_its_start_timeout_ends_with_request_timeout(client, fake_fal):
    fake_fal.script.queue_positions = [3, 2, 1, 0]
    handle = client.submit(APP, arguments={}, start_timeout=1.5)
    assert fake_fal.submissions[0].headers["X-Fal-Request-Timeout"] == "1.5"

    assert isinstance(handle.status(), fal_client.Queued)
    time.sleep(1.6)
    status = handle.status()

    assert isinstance(status, fal_client.Completed) and status.error_type == "request_timeout"


def test_an_upload_goes_to_the_cdn_with_a_token(client, fake_fal, tmp_path):
    path = tmp_path / "images.zip"
    path.write_bytes(b"PK" + b"x" * 1000)

    url = client.upload_file(path)

    assert httpx.get(url).content == path.read_bytes()
    assert [(r.method, r.path) for r in fake_fal.requests] == [
        ("POST", "/storage/auth/token"),
        ("POST", "/files/upload"),
        ("GET", url.removeprefix(fake_fal.url)),
    ]


def test_when_the_cdn_fails_fal_client_falls_back_to_a_signed_upload(client, fake_fal, tmp_path):
    fake_fal.script.cdn_upload_error = 500
    path = tmp_path / "images.zip"
    path.write_bytes(b"PK" + b"y" * 1000)

    url = client.upload_file(path)

    assert httpx.get(url).content == path.read_bytes()
    [initiate] = [r for r in fake_fal.requests if r.path == "/storage/upload/initiate"]
    assert initiate.query == {"storage_type": ["gcs"]}
    assert initiate.body == {"file_name": "images.zip", "content_type": "application/zip"}
    assert initiate.headers["Authorization"] == f"Key {TEST_FAL_KEY}"
    [put] = [r for r in fake_fal.requests if r.method == "PUT"]
    assert put.path.startswith("/storage/signed/") and put.body == path.read_bytes()


def test_a_large_file_goes_up_in_parts_with_etags(client, fake_fal, tmp_path, monkeypatch):
    # fal_client's threshold (100 MiB) and part size (10 MiB), scaled down for the test.
    monkeypatch.setattr(fal_client.client, "MULTIPART_THRESHOLD", 1000)
    monkeypatch.setattr(fal_client.client, "MULTIPART_CHUNK_SIZE", 400)
    path = tmp_path / "images.zip"
    path.write_bytes(bytes(range(256)) * 5)  # 1,280 bytes: four parts

    url = client.upload_file(path)

    assert httpx.get(url).content == path.read_bytes()
    parts = [r for r in fake_fal.requests if r.method == "PUT" and "/multipart/" in r.path]
    assert sorted(int(r.path.rsplit("/", 1)[1]) for r in parts) == [1, 2, 3, 4]
    [complete] = [r for r in fake_fal.requests if r.path.endswith("/complete")]
    assert sorted(part["partNumber"] for part in complete.body["parts"]) == [1, 2, 3, 4]
    assert all(part["etag"].startswith('"') for part in complete.body["parts"])


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_at_the_token_endpoint_fails_the_upload(client, fake_fal, tmp_path, status):
    fake_fal.script.cdn_token_error = status
    path = tmp_path / "images.zip"
    path.write_bytes(b"PK")

    with pytest.raises(httpx.HTTPStatusError) as caught:  # not fal_client's own error type
        client.upload_file(path)

    assert caught.value.response.status_code == status
    assert not [r for r in fake_fal.requests if r.path.startswith("/files")]


def test_gateway_errors_carry_no_request_id_and_fal_client_retries_them(client, fake_fal):
    fake_fal.script.gateway_errors = {"status": [503, 502]}
    handle = client.submit(APP, arguments={})

    assert isinstance(handle.status(), fal_client.Queued)  # after two retried answers

    assert len(fake_fal.status_polls) == 3


def test_a_dropped_submit_answer_leaves_a_job_fal_client_then_submits_again(client, fake_fal):
    """Why the app must not let fal_client resend a submit: two jobs, two bills."""
    fake_fal.script.dropped_submit_answers = 1

    client.submit(APP, arguments={})

    assert len(fake_fal.submissions) == 2
    assert len(fake_fal.jobs) == 2


def test_a_stalled_answer_outlasts_a_clients_timeout(fake_fal):
    fake_fal.script.stall = {"status": 1.0}

    with httpx.Client(timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.get(f"{fake_fal.url}{APP_PATH}/requests/any/status")


def test_expired_files_answer_404(client, fake_fal):
    handle = client.submit(APP, arguments={})
    finished(handle)
    url = handle.get()["images"][0]["url"]
    assert httpx.get(url).status_code == 200

    fake_fal.script.files_missing = True

    assert httpx.get(url).status_code == 404
    assert httpx.head(url).status_code == 404


def test_fal_client_retries_only_gateway_pages_that_name_nginx(client, fake_fal):
    handle = client.submit(APP, arguments={})
    fake_fal.script.gateway_says_nginx = False
    fake_fal.script.gateway_errors = {"status": [502]}

    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.status()

    assert caught.value.status_code == 502
    assert "x-fal-request-id" not in caught.value.response_headers


def test_a_submit_answer_broken_off_in_its_body_is_sent_again_by_fal_client(client, fake_fal):
    fake_fal.script.broken_submit_answers = 1

    client.submit(APP, arguments={})

    assert len(fake_fal.submissions) == 2 and len(fake_fal.jobs) == 2


def test_a_job_whose_lora_does_not_download_fails_with_fals_model_error(client, fake_fal):
    fake_fal.script.fetch_loras = True
    path = f"{fake_fal.url}/files/gone/weights.safetensors"
    handle = client.submit(APP, arguments={"loras": [{"path": path, "scale": 1}]})

    status = finished(handle)

    assert "Failed to download the file" in status.error
    assert fake_fal.fetched == [(path, 404)]
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 422
    [item] = caught.value.message
    assert item == {
        "loc": ["body", "loras", 0, "path"],
        "msg": "Failed to download the file. Please check if the URL is accessible.",
        "type": "file_download_error",
        "url": "https://docs.fal.ai/errors#file_download_error",
        "ctx": {},
        "input": path,
    }
    assert caught.value.response_headers["x-fal-retryable"] == "false"


def test_arguments_the_model_refuses_are_taken_then_fail_with_the_field(client, fake_fal):
    """The queue takes any JSON; the model's schema refuses it as the job runs."""
    handle = client.submit(APP, arguments={"loras": [{"path": "https://w/x", "scale": 9}]})

    finished(handle)

    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 422
    [item] = caught.value.message
    assert (item["loc"], item["type"], item["input"]) == (
        ["body", "loras", 0, "scale"],
        "less_than_equal",
        9,
    )


def test_every_image_asked_for_comes_back_and_flagged_ones_are_black(client, fake_fal):
    fake_fal.script.nsfw = [False, True, False, True]
    handle = client.submit(APP, arguments={"num_images": 4})
    finished(handle)

    result = handle.get()

    assert len(result["images"]) == 4
    assert result["has_nsfw_concepts"] == [False, True, False, True]
    colours = [
        Image.open(io.BytesIO(httpx.get(image["url"]).content)).convert("L").getextrema()
        for image in result["images"]
    ]
    assert [high for _low, high in colours][1::2] == [0, 0]  # flagged: black
    assert all(high > 100 for _low, high in colours[0::2])


def test_fewer_images_come_back_only_when_scripted(client, fake_fal):
    fake_fal.script.images = 1
    handle = client.submit(APP, arguments={"num_images": 4})
    finished(handle)

    result = handle.get()

    assert (len(result["images"]), result["has_nsfw_concepts"]) == (1, [False])


def test_a_request_is_forgotten_after_its_result_expires(client, fake_fal):
    """Unpolled: it finishes `processing_seconds` after its submit, and is forgotten
    `result_expires_after` later; fal itself says so (its request id header)."""
    fake_fal.script.queue_positions = []
    fake_fal.script.processing_seconds = 0.2
    fake_fal.script.result_expires_after = 0.5
    handle = client.submit(APP, arguments={})
    path = f"{APP_PATH}/requests/{handle.request_id}"

    assert raw(fake_fal, f"{path}/status").status_code == 202  # running
    time.sleep(1.0)  # nobody asked while it finished and expired

    for answer in (raw(fake_fal, f"{path}/status"), raw(fake_fal, path)):
        assert answer.status_code == 404
        assert answer.headers["x-fal-request-id"]


def test_an_outage_after_a_submit_answers_the_gateways_503_for_a_while(client, fake_fal):
    fake_fal.script.outage_after_submit = 0.6
    handle = client.submit(APP, arguments={})
    path = f"{APP_PATH}/requests/{handle.request_id}/status"

    during = raw(fake_fal, path)
    time.sleep(0.7)
    after = raw(fake_fal, path)

    assert during.status_code == 503 and "nginx" in during.text
    assert "x-fal-request-id" not in during.headers
    assert after.status_code in (200, 202)


def test_a_submit_answer_that_is_not_json_leaves_a_job(fake_fal):
    fake_fal.script.unreadable_submit_answers = 1

    with httpx.Client() as http:
        answer = http.post(f"{fake_fal.url}{APP_PATH}", json={})

    assert answer.status_code == 200 and answer.headers["x-fal-request-id"]
    with pytest.raises(ValueError):
        answer.json()
    assert len(fake_fal.jobs) == 1
