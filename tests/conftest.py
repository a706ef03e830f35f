"""Shared fixtures. The fake fal server's address and CA are set in the environment here,
before anything imports `fal_client` (it reads its hosts once, at import)."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from lora_core.settings import Settings  # imports no fal_client
from tests.support.fakefal import point_fal_client_at_a_fake  # imports no fal_client either

# fal_client reads its hosts once, when first imported: point it at the fake before that.
FAKE_FAL = point_fal_client_at_a_fake()
# Settings the developer's shell may carry must not leak into tests.
SETTING_NAMES = tuple(name.upper() for name in Settings.model_fields)
for _name in SETTING_NAMES:
    os.environ.pop(_name, None)

from sqlalchemy import Engine  # noqa: E402

from deploy.stack import public_read_policy  # noqa: E402
from lora_core.data.clock import to_iso, utc_now  # noqa: E402
from lora_core.data.db import DatabaseTarget, create_db_engine, session_scope  # noqa: E402
from lora_core.data.models import (  # noqa: E402
    BatchStatus,
    GeneratedImage,
    GenerationBatch,
    LoraStatus,
    LoraTraining,
)
from lora_core.data.schema import ensure_schema  # noqa: E402
from lora_core.fal.generator import FalGenerator  # noqa: E402
from lora_core.fal.trainer import FalTrainer  # noqa: E402
from lora_core.generation.preview import PreviewGenerator  # noqa: E402
from lora_core.generation.quota import QuotaPolicy  # noqa: E402
from lora_core.storage import LocalMediaStore, S3MediaStore  # noqa: E402
from tests.support.fakefal import FakeFal, point_fal_uploads_at, start_fake_fal  # noqa: E402
from tests.support.net import refuse_example_names, serve_https  # noqa: E402
from tests.support.sqld import Sqld  # noqa: E402

# fal_client has its upload hosts as constants, not from the environment: point them at the
# fake too (the browser tests' app process does the same in tests/browser/serve.py).
FAKE_FAL_URL = FAKE_FAL.url
point_fal_uploads_at(FAKE_FAL_URL)
refuse_example_names()  # stored URLs like https://cdn.example/… fail at once, not in 5 s

APP_ROOT = Path(__file__).resolve().parents[1]
# One "now" for the whole run, so rows and quota checks agree on the window's edges.
NOW = utc_now()
TEST_FAL_KEY = "test-key-id:test-key-secret"


@pytest.fixture(scope="session")
def _fake_fal_server() -> Iterator[FakeFal]:
    fake = start_fake_fal(FAKE_FAL.port, FAKE_FAL.ca)
    yield fake
    fake.close()


@pytest.fixture
def fake_fal(_fake_fal_server: FakeFal) -> FakeFal:
    """The fake fal server, with a fresh script and request log for this test."""
    _fake_fal_server.reset()
    return _fake_fal_server


@pytest.fixture(autouse=True)
def _fresh_weights_answers() -> Iterator[None]:
    """Whether a weights URL answers is cached per process: each test asks afresh."""
    from lora_core import weights

    weights.forget_answers()
    yield
    weights.forget_answers()


BACKENDS = ("sqlite", "libsql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_backends` run once on a SQLite file and once on a libSQL server."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_backends"
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def sqld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sqld]:
    """One real libSQL server for the session, on a free loopback port, with auth on."""
    server = Sqld(tmp_path_factory.mktemp("sqld")).start()
    yield server
    server.remove()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> DatabaseTarget:
    """This test's empty database: a SQLite file, or the libSQL server wiped clean."""
    if backend == "libsql":
        server: Sqld = request.getfixturevalue("sqld")
        server.wipe()
        return server.target
    return DatabaseTarget(f"sqlite:///{tmp_path / 'studio.db'}")


@pytest.fixture
def database_url(database: DatabaseTarget) -> str:
    return database.url


def database_env(database: DatabaseTarget) -> dict[str, str]:
    """The settings that point the app at `database`."""
    if database.is_remote:
        return {"TURSO_DATABASE_URL": database.url, "TURSO_AUTH_TOKEN": database.auth_token or ""}
    return {"DATABASE_URL": database.url}


@pytest.fixture
def engine(database: DatabaseTarget) -> Iterator[Engine]:
    engine = create_db_engine(database)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTPS server answering `tests.support.net.Answer`'s way, with its own CA:
    (its URL, the CA's PEM file)."""
    with serve_https(tmp_path / "ca.pem") as server:
        yield server


@pytest.fixture
def media_store(tmp_path: Path) -> LocalMediaStore:
    return LocalMediaStore(tmp_path / "media", "app/static/media")


@pytest.fixture
def preview_generator(media_store: LocalMediaStore) -> PreviewGenerator:
    return PreviewGenerator(media_store, size=128)


@pytest.fixture
def fal_generator(fake_fal: FakeFal) -> FalGenerator:
    return FalGenerator(key=TEST_FAL_KEY, timeout_seconds=10, poll_interval=0.01)


@pytest.fixture
def fal_trainer(fake_fal: FakeFal) -> FalTrainer:
    return FalTrainer(key=TEST_FAL_KEY)


@pytest.fixture
def policy() -> QuotaPolicy:
    return QuotaPolicy(limit=8, window=timedelta(hours=24), exempt_users=frozenset({"admin"}))


KIT_FIELDS = (
    "engine", "generator", "policy", "store", "allow_private_weights", "lease_terms", "max_stacked"
)  # fmt: skip


@pytest.fixture
def generate_batch(engine: Engine, fal_generator: FalGenerator, policy: QuotaPolicy):
    """A batch generated through the real service and fal_client against the fake fal:
    ann's, of `lora_id` ("a cat" unless told); any of `service.generate`'s arguments may
    be given instead of these."""
    from lora_core.generation import service

    def run(lora_id: str, prompt: str | None = "a cat", **overrides: object):
        kit = {"engine": engine, "generator": fal_generator, "policy": policy}
        kit |= {name: value for name, value in overrides.items() if name in KIT_FIELDS}
        asked = {name: value for name, value in overrides.items() if name not in KIT_FIELDS}
        return service.generate(
            kit=service.GenerationKit(**kit),  # type: ignore[arg-type]
            **({"user": "ann", "lora_id": lora_id, "prompt": prompt} | asked),
        )

    return run


@pytest.fixture
def add_lora(engine: Engine) -> Callable[..., LoraTraining]:
    """Insert a LoRA (completed, with weights, unless told otherwise) and return it."""
    counter = iter(range(1, 1_000_000))

    def add(
        lora_id: str | None = None,
        *,
        trigger_word: str = "sks-style",
        status: str = LoraStatus.COMPLETED,
        weights_url: str | None = "https://weights.example/lora.safetensors",
        steps: int | None = 1000,
        created_at: str | None = None,
    ) -> LoraTraining:
        number = next(counter)
        lora = LoraTraining(
            id=lora_id or f"lora-{number}",
            request_id=f"req-{number}",
            user="trainer",
            trigger_word=trigger_word,
            steps=steps,
            lora_weights_url=weights_url,
            status=status,
            created_at=created_at or to_iso(utc_now() - timedelta(minutes=number)),
        )
        with session_scope(engine) as session:
            session.add(lora)
            session.commit()
        return lora

    return add


@pytest.fixture
def add_images(engine: Engine) -> Callable[..., None]:
    """Insert `count` images of a LoRA, a minute apart; image `n` is "prompt n"."""

    def add(lora_id: str, count: int, *, start_minutes_ago: int = 1000) -> None:
        with session_scope(engine) as session:
            for number in range(count):
                session.add(
                    GeneratedImage(
                        id=f"{lora_id}-img-{number:04d}",
                        lora_training_id=lora_id,
                        user="ann" if number % 2 else "bob",
                        prompt=f"prompt {number}",
                        image_url=f"https://cdn.example/{lora_id}/{number}.jpg",
                        created_at=to_iso(NOW - timedelta(minutes=start_minutes_ago - number)),
                    )
                )
            session.commit()

    return add


@pytest.fixture
def add_batch(engine: Engine) -> Callable[..., str]:
    """Insert a generation batch `age` before NOW (succeeded, by "ann", unless told otherwise)."""
    counter = iter(range(1, 1_000_000))

    def add(
        *,
        user: str = "ann",
        age: timedelta = timedelta(hours=1),
        status: str = BatchStatus.SUCCEEDED,
    ) -> str:
        batch_id = f"batch-{next(counter)}"
        with session_scope(engine) as session:
            session.add(
                GenerationBatch(
                    id=batch_id,
                    lora_training_id="lora-1",
                    user=user,
                    prompt="p",
                    status=status,
                    created_at=to_iso(NOW - age),
                )
            )
            session.commit()
        return batch_id

    return add


@pytest.fixture
def app_env(monkeypatch, database: DatabaseTarget, tmp_path: Path) -> dict[str, str]:
    """Point the app at this test's database and media folder, with fresh caches."""
    import streamlit as st

    # No background sweep: a test sees only the recovery it asks for (tests/ui/test_context).
    values = {
        **database_env(database),
        "MEDIA_DIR": str(tmp_path / "media"),
        "RECOVERY_SWEEP_SECONDS": "0",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield values
    st.cache_resource.clear()
    st.cache_data.clear()
    gc.unfreeze()  # what the app's runs froze (ui/memory.py) is this process's to collect


@pytest.fixture
def open_app(app_env, engine):
    """Run the app like a browser would: the gallery, or a page with query params."""
    from streamlit.testing.v1 import AppTest

    def open_page(
        page: str | None = None,
        *,
        user: dict | None = None,
        secrets: dict | None = None,
        **query: str,
    ) -> AppTest:
        at = AppTest.from_file(str(APP_ROOT / "router.py"), default_timeout=30)
        at.secrets.update(secrets or {})
        if user is not None:
            at.user = user
        for name, value in query.items():
            at.query_params[name] = value
        at.run()
        if page is not None:
            at.switch_page(page).run()
        return at

    return open_page


@pytest.fixture
def captured_downloads(monkeypatch) -> dict[str, Callable[[], bytes]]:
    """The data callables of every `st.download_button(data=callable)` the app renders, by
    file name: what a click would download."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    downloads: dict[str, Callable[[], bytes]] = {}
    register = MediaFileManager.add_deferred

    def capture(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        downloads[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", capture)
    return downloads


def open_with_query(open_app: Callable[..., object], page: str, **query: object) -> object:
    """Open `page` as a link with `query` would: the app first, then the page with them."""
    at = open_app()
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(page).run()
    return at


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto's server mode) on 127.0.0.1; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_server: str) -> S3MediaStore:
    """A fresh bucket on the local S3 server, with its objects served from the server."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    store = S3MediaStore(
        bucket=bucket,
        public_url=f"{s3_server}/{bucket}",
        endpoint_url=s3_server,
        access_key_id="test-access",
        secret_access_key="test-secret",
    )
    store._client.create_bucket(Bucket=bucket)
    # As a deployment would: objects are publicly readable, so an image URL opens anywhere.
    store._client.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket))
    return store
