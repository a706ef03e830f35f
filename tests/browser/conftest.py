"""Browser tests: the real app in a subprocess, driven by headless Debian Chromium.

The app gets its own SQLite file (seeded with the demo LoRAs), its own media folder
under `static/media/test-<hex>` so Streamlit's static serving can hand out the images,
and the local fake fal server (tests/support/fakefal.py) as its generator backend: the same
`FAL_RUN_HOST`/`FAL_QUEUE_RUN_HOST`/`SSL_CERT_FILE` that tests/conftest.py set for this
process, plus a test `FAL_KEY`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page

from tests.conftest import FAKE_FAL_URL, SETTING_NAMES, TEST_FAL_KEY
from tests.support.appserver import CHROMIUM, CHROMIUM_ARGS, is_healthy, stop, streamlit_flags
from tests.support.fakefal import FakeFal
from tests.support.fakeoidc import FakeOidcProvider
from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BROWSER_TESTS = Path(__file__).resolve().parent
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
STARTUP_TIMEOUT = 30.0


_CONTENT_HEIGHT_JS = """() => Math.max(
    document.documentElement.scrollHeight,
    ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebarContent]')]
        .map((element) => element.scrollHeight))"""


def summary_value(page: Page, label: str) -> Locator:
    """A figure of a summary (History's: `ui.components.summary_html`) by its label."""
    return (
        page.locator("dl.ls-summary > div")
        .filter(has=page.locator("dt", has_text=label))
        .locator("dd")
    )


@dataclass(frozen=True)
class RunningApp:
    url: str
    db_path: Path
    media_dir: Path
    media_url_prefix: str
    log_path: Path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_TESTS in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with code {process.returncode}:\n{_log_tail(log_path)}"
            )
        if is_healthy(url):
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"streamlit was not healthy within {STARTUP_TIMEOUT:.0f} s:\n{_log_tail(log_path)}"
    )


@contextmanager
def running_app(
    work: Path, *, secrets_toml: Callable[[str], str] | None = None
) -> Iterator[RunningApp]:
    """The app on a free port with a fresh demo database, its own media folder and fake fal."""
    token = secrets.token_hex(6)
    db_path = work / "studio.db"
    media_dir = REPO_ROOT / "static" / "media" / f"test-{token}"
    media_url_prefix = f"app/static/media/test-{token}"
    log_path = work / "streamlit.log"

    env = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env.update(
        FAL_KEY=TEST_FAL_KEY,
        FAKE_FAL_URL=FAKE_FAL_URL,
        ALLOW_PRIVATE_WEIGHTS_URLS="true",  # registered LoRAs' weights on the fake (loopback)
        DATABASE_URL=f"sqlite:///{db_path}",
        MEDIA_DIR=str(media_dir),
        MEDIA_URL_PREFIX=media_url_prefix,
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The repo's own .streamlit/secrets.toml never applies: the app reads only this one.
    secrets_file = work / "secrets.toml"
    secrets_file.write_text(secrets_toml(url) if secrets_toml else "")
    process: subprocess.Popen[bytes] | None = None
    try:
        seeded = subprocess.run(
            [sys.executable, "-m", "lora_core.cli.demo", "--force"],
            cwd=REPO_ROOT,
            env={name: value for name, value in env.items() if name != "FAL_KEY"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding the demo data failed:\n{seeded.stdout}{seeded.stderr}")
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(BROWSER_TESTS / "serve.py"),  # streamlit, uploads to the fake fal
                    *streamlit_flags(port, secrets_file),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_until_healthy(process, url, log_path)
        yield RunningApp(
            url=url,
            db_path=db_path,
            media_dir=media_dir,
            media_url_prefix=media_url_prefix,
            log_path=log_path,
        )
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(media_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def app_server(
    tmp_path_factory: pytest.TempPathFactory, _fake_fal_server: FakeFal
) -> Iterator[RunningApp]:
    """One running app shared by the journeys (each resets it with `fresh_app`)."""
    with running_app(tmp_path_factory.mktemp("browser-app")) as app:
        yield app


@pytest.fixture
def cold_app(tmp_path: Path, _fake_fal_server: FakeFal) -> Iterator[RunningApp]:
    """A just-started app that no browser has visited yet."""
    with running_app(tmp_path) as app:
        yield app


@pytest.fixture(scope="session")
def base_url(app_server: RunningApp) -> str:
    """pytest-playwright passes this to every browser context: `page.goto("/")` works."""
    return app_server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "ignore_https_errors": True}


@pytest.fixture
def fresh_app(app_server: RunningApp, fake_fal: FakeFal) -> RunningApp:
    """The app as the demo seed left it: no generations or trainings by the guest, fal
    answering normally."""
    with closing(sqlite3.connect(app_server.db_path)) as connection, connection:
        connection.execute("DELETE FROM generated_images WHERE wallet_address = 'guest'")
        connection.execute("DELETE FROM generation_batches WHERE wallet_address = 'guest'")
        connection.execute("DELETE FROM sweeps WHERE wallet_address = 'guest'")
        connection.execute("DELETE FROM lora_trainings WHERE wallet_address = 'guest'")
    return app_server


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots_folder() -> None:
    """Only this run's pictures: none left over from renamed or removed tests."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def final_screenshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Save the page as the test left it (passed or failed) to test-output/screenshots/."""
    if "page" not in request.fixturenames:
        yield
        return
    page = request.getfixturevalue("page")
    yield
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    label = "-".join(
        [request.node.originalname]
        + [str(value) for key, value in params.items() if key != "browser_name"]
    )
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    try:
        # Streamlit scrolls inside its own container, so `full_page` alone shows only the
        # viewport: make the viewport as tall as the content first.
        height = page.evaluate(_CONTENT_HEIGHT_JS)
        width = (page.viewport_size or {"width": 1280})["width"]
        if height:
            page.set_viewport_size({"width": width, "height": min(int(height), 8000)})
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, timeout=10_000)
    except Exception as error:  # a screenshot must never hide the test's own outcome
        print(f"could not save the final screenshot: {error}", file=sys.stderr)


@pytest.fixture
def oidc_provider() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider()
    yield provider
    provider.close()


@pytest.fixture
def app_with_login(
    tmp_path: Path, _fake_fal_server: FakeFal, oidc_provider
) -> Iterator[RunningApp]:
    """A just-started app whose `[auth]` points at the local OpenID Connect provider."""
    with running_app(tmp_path, secrets_toml=oidc_provider.secrets_toml) as app:
        yield app
