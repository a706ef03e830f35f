"""Load through nginx on several replicas: K sessions at once on the gallery, a LoRA's page
and History while generations run.

    .venv/bin/python benchmarks/load.py [--replicas 2] [--sessions 1,2,10,30] [--rounds 3]
        [--think 1.0]

It starts the deployment of `deploy/` on loopback (`deploy.stack.Stack`: sqld, a local S3
server, the replicas, nginx) over the demo data, with the local fake fal answering each
generation after 1 s. While one visitor generates through the proxy again and again
(`keep_generating`: the Generate dialog, four images at a time), K clients each open a
Streamlit session the way the browser does (a WebSocket to `/_stcore/stream` through
nginx, with the route cookie nginx gave it with the app's page: new browsers are spread
over the replicas in turn) and ask for the gallery, a LoRA's page and History, `--rounds`
times (more for small K, so that every K has at least 60 pages), pausing `--think` seconds
after each page as a person reading it would (0: as fast as the server answers).
**Page ready** = from asking for a page to Streamlit's "script finished"; an **error** is a
page that raised, showed "Something went wrong" or "unavailable", or took over 30 s.
It prints p50/p95 per K, the errors, and p95(K=max) / p95(K=1); goal: 0 errors and that
ratio <= 3 at K = 30 on 2 replicas. Loopback only; bounded by K x rounds x 3 pages.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fakefal import point_fal_client_at_a_fake, start_fake_fal  # noqa: E402

FAKE = point_fal_client_at_a_fake()  # before fal_client is imported, by anything

import websockets  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.Element_pb2 import Element  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

from deploy.stack import Stack  # noqa: E402

LORA = "demo-neon-noir"
PAGES = (("", ""), ("lora", f"id={LORA}"), ("history", ""))  # (page name, query)
PAGE_TIMEOUT = 30.0
BROKEN = ("Something went wrong", "unavailable right now")


async def open_page(
    socket: websockets.ClientConnection, name: str, query: str
) -> tuple[float, str | None]:
    """Ask the session for a page; (seconds until its script finished, error or None)."""
    started = time.monotonic()
    elements, status = await rerun(socket, name, query)
    return time.monotonic() - started, page_error(elements, status)


def page_error(elements: list[Element], status: str) -> str | None:
    """What went wrong on a page, as a user would see it: an exception, a "something went
    wrong" or "unavailable" alert, or a script that did not finish; None when nothing did."""
    error = None
    for element in elements:
        if element.WhichOneof("type") == "exception":
            error = f"exception: {element.exception.message}"
        elif element.WhichOneof("type") == "alert" and any(
            text in element.alert.body for text in BROKEN
        ):
            error = element.alert.body
    return error or (status if status != "FINISHED_SUCCESSFULLY" else None)


async def session(url: str, rounds: int, think: float) -> tuple[list[tuple[str, float]], list[str]]:
    """One visitor: a session of its own through the proxy, every page `rounds` times.
    Visitors arrive spread over one pause, not all in the same millisecond: K sessions
    reading pages, not a burst of K first pages at once."""
    times: list[tuple[str, float]] = []
    errors: list[str] = []
    await asyncio.sleep(think * random.uniform(0, 1))
    async with websockets.connect(
        f"{url.replace('http', 'ws')}/_stcore/stream",
        subprotocols=["streamlit"],
        additional_headers={"Cookie": await asyncio.to_thread(route_cookie, url)},
        max_size=None,
    ) as socket:
        for _round in range(rounds):
            for name, query in PAGES:
                try:
                    seconds, error = await asyncio.wait_for(
                        open_page(socket, name, query), PAGE_TIMEOUT
                    )
                except TimeoutError:
                    seconds, error = PAGE_TIMEOUT, "timed out"
                times.append((name or "gallery", seconds))
                if error:
                    errors.append(f"{name or 'gallery'}: {error}")
                await asyncio.sleep(think * random.uniform(0.5, 1.5))
    return times, errors


async def load(
    url: str, sessions: int, rounds: int, think: float
) -> tuple[list[tuple[str, float]], list[str]]:
    """Every page's (name, seconds) of `sessions` visitors at once, and their errors."""
    outcomes = await asyncio.gather(
        *(session(url, rounds, think) for _ in range(sessions)), return_exceptions=True
    )
    times: list[tuple[str, float]] = []
    errors: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            errors.append(f"session failed: {outcome!r}")
        else:
            times += outcome[0]
            errors += outcome[1]
    return times, errors


async def rerun(
    socket: websockets.ClientConnection,
    name: str,
    query: str,
    widgets: list[WidgetState] | None = None,
) -> tuple[list[Element], str]:
    """One run of `name` with these widget states (a click, a typed prompt), as the browser
    sends it: (the elements it drew, how its script finished), once Streamlit says it
    finished (a run that reruns itself, as the dialog does after a generation, counts with
    its rerun)."""
    message = BackMsg()
    message.rerun_script.page_name = name
    message.rerun_script.query_string = query
    message.rerun_script.widget_states.widgets.extend(widgets or [])
    await socket.send(message.SerializeToString())
    elements: list[Element] = []
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(await socket.recv())
        kind = forward.WhichOneof("type")
        if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
            elements.append(forward.delta.new_element)
        if kind == "script_finished":
            status = ForwardMsg.ScriptFinishedStatus.Name(forward.script_finished)
            if status != "FINISHED_EARLY_FOR_RERUN":
                return elements, status


def route_cookie(url: str) -> str:
    """The route cookie nginx gives a new browser with the app's page (the replica it keeps
    the browser on), as the browser gets it before it opens its WebSocket."""
    with urllib.request.urlopen(f"{url}/", timeout=10) as answer:
        return answer.headers["Set-Cookie"].split(";", 1)[0]


def widget(elements: list[Element], kind: str, test: Callable[[Any], bool]) -> Any:
    """The first widget of `kind` ("button", "text_area"…) that passes `test`."""
    return next(
        getattr(element, kind)
        for element in elements
        if element.WhichOneof("type") == kind and test(getattr(element, kind))
    )


async def warm_up(replica_urls: list[str]) -> None:
    """Each page once on every replica, directly: the first page a replica serves imports
    pandas, Altair and the rest (about 2 s; benchmarks/cold_start.py measures it), which is
    not what K sessions on running replicas wait for."""
    for replica_url in replica_urls:
        async with websockets.connect(
            f"{replica_url.replace('http', 'ws')}/_stcore/stream",
            subprotocols=["streamlit"],
            max_size=None,
        ) as socket:
            for name, query in PAGES:
                await open_page(socket, name, query)


async def keep_generating(url: str, stop: threading.Event, made: list[int]) -> None:
    """One visitor generating on a LoRA's page through the proxy until `stop`: open the
    Generate dialog, type a prompt, click "Generate 4 Images", wait for the four images;
    again. It speaks Streamlit's protocol as the browser does, so the server does all of a
    generation's work (the dialog, the quota, fal, copying the images to S3, thumbnails)
    while this side costs nothing: a Chromium tab drawing the pages took 0.6-0.8 of a core
    of this 2-core machine from the replicas, work a user's browser does on the user's
    machine."""
    query = f"id={LORA}"
    async with websockets.connect(
        f"{url.replace('http', 'ws')}/_stcore/stream",
        subprotocols=["streamlit"],
        additional_headers={"Cookie": await asyncio.to_thread(route_cookie, url)},
        max_size=None,
    ) as socket:
        while not stop.is_set():
            page, _ = await rerun(socket, "lora", query)
            opener = widget(page, "button", lambda button: "open_generate" in button.id)
            dialog, _ = await rerun(socket, "lora", query, [clicked(opener.id)])
            prompt = widget(dialog, "text_area", lambda box: box.label == "Prompt")
            submit = widget(dialog, "button", lambda button: button.is_form_submitter)
            typed = WidgetState(id=prompt.id, string_value=f"load test {len(made)}")
            done, _ = await asyncio.wait_for(
                rerun(socket, "lora", query, [typed, clicked(submit.id)]), 60
            )
            if not any(
                element.WhichOneof("type") == "markdown"
                and "another batch" in element.markdown.body
                for element in done
            ):
                raise RuntimeError("a generation did not show its images")
            made.append(1)


def clicked(widget_id: str) -> WidgetState:
    return WidgetState(id=widget_id, trigger_value=True)


def generating(url: str, stop: threading.Event, made: list[int], errors: list[str]) -> None:
    """`keep_generating` on a thread of its own, while the sessions measure."""
    try:
        asyncio.run(keep_generating(url, stop, made))
    except Exception as error:  # reported with the results
        errors.append(f"generating: {error!r}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--sessions", default="1,2,10,30", help="the K to measure, in order")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between pages")
    arguments = parser.parse_args()
    counts = [int(value) for value in arguments.sessions.split(",")]

    fake = start_fake_fal(FAKE.port, FAKE.ca)
    fake.script.processing_seconds = 1.0
    stack = Stack(
        Path(tempfile.mkdtemp(prefix="load-")),
        replicas=arguments.replicas,
        env={
            "FAL_KEY": "bench-key-id:bench-key-secret",
            "ALLOW_PRIVATE_WEIGHTS_URLS": "true",
            "GENERATION_LIMIT": "100000",
        },
    )
    stop = threading.Event()
    made: list[int] = []
    all_errors: list[str] = []
    try:
        stack.start()
        stack.seed_demo()
        asyncio.run(warm_up([node.url for node in stack.nodes]))
        generator = threading.Thread(target=generating, args=(stack.url, stop, made, all_errors))
        generator.start()
        time.sleep(3)  # the first generation under way
        print(
            f"{arguments.replicas} replicas behind nginx; {os.cpu_count()} cores; "
            f"{arguments.think} s between pages\n"
        )
        print(
            "| K sessions | pages | p50 ms | p95 ms | errors | p95 ms: gallery | LoRA | History |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        p95: dict[int, float] = {}
        for count in counts:
            rounds = max(arguments.rounds, math.ceil(60 / (len(PAGES) * count)))
            named, errors = asyncio.run(load(stack.url, count, rounds, arguments.think))
            times = [seconds for _name, seconds in named]
            p95[count] = percentile(times, 0.95)
            all_errors += errors
            by_page = " | ".join(
                f"{percentile([s for n, s in named if n == page], 0.95) * 1000:.0f}"
                for page in ("gallery", "lora", "history")
            )
            print(
                f"| {count} | {len(times)} | {statistics.median(times) * 1000:.0f} "
                f"| {p95[count] * 1000:.0f} | {len(errors)} | {by_page} |"
            )
        stop.set()
        generator.join(timeout=90)
        first, last = counts[0], counts[-1]
        print(f"\ngenerations finished meanwhile: {len(made)}")
        print(f"p95 at K={last} / p95 at K={first}: {p95[last] / p95[first]:.2f} (goal <= 3)")
        for error in all_errors[:10]:
            print(f"error: {error}")
    finally:
        stop.set()
        stack.stop()
        fake.close()


if __name__ == "__main__":
    main()
