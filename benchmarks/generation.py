"""Generation overhead over fal's own time, and copying 4 images vs 1.

    .venv/bin/python benchmarks/generation.py [--delay 2] [--repeat 5] [--image-delay 0.2]

The real `FalGenerator` and `fal_client` talk to the local fake fal server
(tests/support/fakefal.py, TLS with a throwaway CA, started as tests/conftest.py starts
it), scripted
to answer after `--delay` seconds of processing. Each repetition times one whole
`service.generate(...)` (prompt check, LoRA lookup, quota reservation, submit, status polls,
result, copying the 4 images into a local media store, storing the batch) on a temporary
SQLite database: `overhead = t - d`, median over the repetitions, goal <= 5 % of d. It is
measured with the tests' poll interval (`--poll-interval`, 0.01 s) and with the interval the
app really uses (FalGenerator's default). fal's answer is only seen at the next status poll,
so repetition i runs with `d + i/repeat * interval`: the job ends at every phase between two
polls, not always at the same lucky (or unlucky) one; `t` is the median at that spread.

Then `storage.copy_images` copies 4 images vs 1 from the fake, whose image downloads are
slowed here by `--image-delay` per image (the fake itself has no such knob): the four are
copied at once, so the goal is `copy 4 / copy 1` of about 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fakefal import FakeFal, Script, point_fal_client_at_a_fake, start_fake_fal  # noqa: E402

FAL_KEY = "test-key-id:test-key-secret"
image_delay = 0.0  # seconds each /files/ download of the fake waits; set by copy_ratio()


# As tests/conftest.py: fal_client reads its hosts once, at import, so this comes first.
FAKE = point_fal_client_at_a_fake()

from lora_core.data.clock import to_iso, utc_now  # noqa: E402
from lora_core.data.db import create_db_engine, session_scope  # noqa: E402
from lora_core.data.models import LoraStatus, LoraTraining  # noqa: E402
from lora_core.data.schema import ensure_schema  # noqa: E402
from lora_core.fal.generator import FalGenerator  # noqa: E402
from lora_core.generation import service  # noqa: E402
from lora_core.generation.quota import QuotaPolicy  # noqa: E402
from lora_core.generation.service import GenerationKit  # noqa: E402
from lora_core.storage import LocalMediaStore, copy_images  # noqa: E402

USER = "bench@example.com"
POLICY = QuotaPolicy(limit=8, window=timedelta(hours=24), exempt_users=frozenset({USER}))


def start_fake() -> FakeFal:
    """The fake fal server, with each image download held back by `image_delay`."""
    fake = start_fake_fal(FAKE.port, FAKE.ca)
    base = fake._server.RequestHandlerClass

    class SlowImages(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            if self.path.startswith("/files/") and image_delay:
                time.sleep(image_delay)
            super().do_GET()

    fake._server.RequestHandlerClass = SlowImages
    return fake


def generate_overheads(
    fake: FakeFal, directory: str, *, delay: float, repeat: int, poll_interval: float
) -> list[tuple[float, float]]:
    """(t, d) of whole `service.generate` calls, fal processing for d = `delay` + a phase."""
    engine = create_db_engine(f"sqlite:///{directory}/studio-{poll_interval}.db")
    ensure_schema(engine)
    with session_scope(engine) as session:
        session.add(
            LoraTraining(
                id="lora-bench",
                request_id="req-bench",
                user="trainer",
                trigger_word="sks-style",
                steps=1000,
                lora_weights_url="https://weights.example/lora.safetensors",
                status=LoraStatus.COMPLETED,
                created_at=to_iso(utc_now() - timedelta(days=1)),
            )
        )
        session.commit()
    store = LocalMediaStore(Path(directory) / "media", "app/static/media")
    generator = FalGenerator(key=FAL_KEY, timeout_seconds=60, poll_interval=poll_interval)
    timings = []
    for run in range(repeat + 1):  # the first run (no processing time) warms up; not counted
        processing = delay + (run - 1) / repeat * poll_interval if run else 0.0
        with fake.lock:
            fake.script = Script(queue_positions=[], processing_seconds=processing)
        start = time.perf_counter()
        outcome = service.generate(
            kit=GenerationKit(engine=engine, generator=generator, policy=POLICY, store=store),
            user=USER,
            lora_id="lora-bench",
            prompt="a lighthouse on a cliff at dawn",
        )
        elapsed = time.perf_counter() - start
        if len(outcome.images) != 4 or not all(
            image.image_url.startswith("app/static/media/") for image in outcome.images
        ):
            raise RuntimeError(f"unexpected outcome: {outcome}")
        if run:
            timings.append((elapsed, processing))
    engine.dispose()
    return timings


def copy_seconds(fake: FakeFal, store: LocalMediaStore, count: int, repeat: int) -> float:
    timings = []
    for run in range(repeat + 1):  # the first run warms up; not counted
        sources = [
            (f"https://{fake.host}/files/copy-{count}-{run}/{index}.jpg", f"c{count}/{run}/{index}")
            for index in range(count)
        ]
        start = time.perf_counter()
        copies = copy_images(store, sources)
        elapsed = time.perf_counter() - start
        if None in copies:
            raise RuntimeError(f"a copy failed: {copies}")
        if run:
            timings.append(elapsed)
    return statistics.median(timings)


def main() -> None:
    global image_delay
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=2.0, help="fal processing time d (s)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=0.01, help="as the tests use")
    parser.add_argument("--image-delay", type=float, default=0.2, help="per image download (s)")
    args = parser.parse_args()
    fake = start_fake()
    app_interval = FalGenerator.__dataclass_fields__["poll_interval"].default
    try:
        with tempfile.TemporaryDirectory() as directory:
            print(f"generate: d = {args.delay:g} s (+ phase), median of {args.repeat}")
            print(
                f"{'poll interval':<22} {'d s':>13} {'t s':>7} {'overhead ms':>12} "
                f"{'% of d':>7} {'max ms':>7}"
            )
            for label, interval in (
                (f"{args.poll_interval:g} s (tests)", args.poll_interval),
                (f"{app_interval:g} s (app default)", app_interval),
            ):
                runs = generate_overheads(
                    fake, directory, delay=args.delay, repeat=args.repeat, poll_interval=interval
                )
                t = statistics.median(elapsed for elapsed, _d in runs)
                overheads = [elapsed - d for elapsed, d in runs]
                overhead = statistics.median(overheads)
                spread = f"{runs[0][1]:.3f}-{runs[-1][1]:.3f}"
                print(
                    f"{label:<22} {spread:>13} {t:7.3f} {overhead * 1000:12.1f} "
                    f"{overhead / args.delay * 100:6.1f}% {max(overheads) * 1000:7.1f}"
                )
            image_delay = args.image_delay
            store = LocalMediaStore(Path(directory) / "copies", "app/static/media")
            one = copy_seconds(fake, store, 1, args.repeat)
            four = copy_seconds(fake, store, 4, args.repeat)
            print(
                f"copy_images, {args.image_delay * 1000:.0f} ms per image download: "
                f"1 image {one * 1000:.1f} ms, 4 images {four * 1000:.1f} ms, "
                f"copy 4 / copy 1 = {four / one:.2f}"
            )
    finally:
        fake.close()
    print("goals: overhead <= 5 % of d; copy 4 / copy 1 about 1")


if __name__ == "__main__":
    main()
