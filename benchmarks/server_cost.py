"""What a page costs the server: CPU time per page of a replica and of sqld, and the
messages it sends, for the pages `load.py` asks for; or the same cost of two checkouts
side by side.

    .venv/bin/python benchmarks/server_cost.py [--pages 60] [--sessions 3]
    .venv/bin/python benchmarks/server_cost.py --against ../other-checkout [--pages 150]

The load benchmark's p95 moves a lot from one run to the next (the same code gave 3.3 and
8.1 minutes apart on a 2-core machine); what it is made of moves less: the CPU a replica
spends on each page. This starts the deployment `load.py` does (`deploy.stack`: sqld, a
local S3 server, one replica) over the demo data, generates six batches on the LoRA page
`load.py` opens (a full page of 24 images in groups, as in the middle of a load run),
opens each page once to warm it up, then has `--sessions` sessions at once open that page
`--pages` times in all, straight to the replica, and reads the replica's and sqld's CPU
time (`/proc/<pid>/stat`) before and after. It prints CPU ms per page for each and the
messages a page sends (the figures to lower for the load goal: at `--think 0.5` and K=30
two replicas serve about 40 pages a second).

This machine's speed drifts by a fifth from one minute to the next, more than most
changes: `--against DIR` compares instead. A second replica, run from the checkout in DIR
(with its `.venv`, e.g. a `git worktree` with `.venv` and `.tools` linked), serves the
same database; the two take turns, ten blocks of `--pages / 10` pages each, one session at
a time, and it prints each page's CPU ms per page for both and this checkout's over DIR's
(`B/A` < 1: this checkout is cheaper). Two copies of one checkout differ by up to 3 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# `benchmarks.load` points fal_client at its fake (FAKE) as it is imported, first.
from benchmarks.load import FAKE, PAGES, generating, open_page, warm_up  # noqa: E402, I001

import websockets  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from deploy.stack import Stack, free_port, stop_process, wait_until_up  # noqa: E402
from tests.support.fakefal import start_fake_fal  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
FULL_PAGE_BATCHES = 6  # with the demo's images, more than the LoRA page's 24


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def messages(url: str, name: str, query: str) -> int:
    """How many messages one run of a page sends (its second run in a session)."""
    async with websockets.connect(
        f"{url.replace('http', 'ws')}/_stcore/stream", subprotocols=["streamlit"], max_size=None
    ) as socket:
        await open_page(socket, name, query)
        request = BackMsg()
        request.rerun_script.page_name = name
        request.rerun_script.query_string = query
        await socket.send(request.SerializeToString())
        count = 0
        while True:
            count += 1
            forward = ForwardMsg()
            forward.ParseFromString(await socket.recv())
            if forward.WhichOneof("type") == "script_finished":
                return count


async def visitor(url: str, name: str, query: str, pages: int) -> None:
    async with websockets.connect(
        f"{url.replace('http', 'ws')}/_stcore/stream", subprotocols=["streamlit"], max_size=None
    ) as socket:
        for _ in range(pages):
            _seconds, error = await open_page(socket, name, query)
            if error:
                raise RuntimeError(f"{name or 'gallery'}: {error}")


async def pages_at_once(url: str, name: str, query: str, pages: int, sessions: int) -> None:
    await asyncio.gather(*(visitor(url, name, query, pages // sessions) for _ in range(sessions)))


def fill_a_page(url: str, *, batches: int) -> None:
    """Generate `batches` batches of four on the LoRA page `load.py` opens, as its visitor
    who generates does (through the Generate dialog): the page then shows a full page of
    images in groups, as it does in the middle of a load run."""
    stop = threading.Event()
    made: list[int] = []
    errors: list[str] = []
    worker = threading.Thread(target=generating, args=(url, stop, made, errors))
    worker.start()
    while len(made) < batches and not errors and worker.is_alive():
        time.sleep(0.1)
    stop.set()
    worker.join(timeout=60)
    if errors:
        raise RuntimeError(errors[0])


def start_replica_of(checkout: Path, stack: Stack) -> tuple[str, subprocess.Popen[bytes]]:
    """A replica of another checkout over the stack's database and store: (URL, process)."""
    port = free_port()
    log = stack.folder / "other-replica.log"
    secrets_file = stack.folder / "secrets.toml"
    secrets_file.touch()
    process = subprocess.Popen(
        ["bash", str(checkout / "deploy" / "replica.sh"), str(port), "--secrets.files",
         str(secrets_file)],
        cwd=checkout, env=stack.environment(), stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/_stcore/health", process, log)
    return url, process


def compare(a: tuple[str, int], b: tuple[str, int], *, pages: int, blocks: int = 10) -> None:
    """Each page on replica A (url, pid) then B, in turns of `pages / blocks`: CPU ms/page."""
    print(f"{blocks} turns of {pages // blocks} pages on each, one session at a time\n")
    print("| page | A: CPU ms / page | B: CPU ms / page | B/A |")
    print("| --- | --- | --- | --- |")
    for name, query in PAGES:
        spent = [0.0, 0.0]
        for _turn in range(blocks):
            for index, (url, pid) in enumerate((a, b)):
                before = cpu_seconds(pid)
                asyncio.run(pages_at_once(url, name, query, pages // blocks, 1))
                spent[index] += cpu_seconds(pid) - before
        each = [seconds * 1000 / (pages // blocks * blocks) for seconds in spent]
        print(f"| {name or 'gallery'} | {each[0]:.1f} | {each[1]:.1f} | {each[1] / each[0]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, to compare with")
    arguments = parser.parse_args()
    other: subprocess.Popen[bytes] | None = None
    stack = Stack(
        Path(tempfile.mkdtemp(prefix="server-cost-")),
        replicas=1,
        env={
            "FAL_KEY": "bench-key-id:bench-key-secret",
            "ALLOW_PRIVATE_WEIGHTS_URLS": "true",
            "GENERATION_LIMIT": "100000",
        },
    )
    fake = start_fake_fal(FAKE.port, FAKE.ca)
    fake.script.processing_seconds = 1.0
    try:
        stack.start()
        stack.seed_demo()
        node = stack.nodes[0]
        assert node.process is not None
        sqld = stack._processes["sqld"].pid
        fill_a_page(stack.url, batches=FULL_PAGE_BATCHES)  # via nginx: its cookie
        if arguments.against:
            other_url, other = start_replica_of(arguments.against.resolve(), stack)
            asyncio.run(warm_up([other_url, node.url]))
            print(f"A = {arguments.against.resolve()}, B = {ROOT}")
            compare((other_url, other.pid), (node.url, node.process.pid), pages=arguments.pages)
            return
        asyncio.run(warm_up([node.url]))
        print(f"1 replica, {arguments.sessions} sessions at once, {arguments.pages} pages each\n")
        print("| page | replica CPU ms / page | sqld CPU ms / page | messages |")
        print("| --- | --- | --- | --- |")
        for name, query in PAGES:
            before = cpu_seconds(node.process.pid), cpu_seconds(sqld)
            asyncio.run(pages_at_once(node.url, name, query, arguments.pages, arguments.sessions))
            after = cpu_seconds(node.process.pid), cpu_seconds(sqld)
            replica_ms, sqld_ms = (
                (b - a) * 1000 / arguments.pages for a, b in zip(before, after, strict=True)
            )
            sent = asyncio.run(messages(node.url, name, query))
            print(f"| {name or 'gallery'} | {replica_ms:.1f} | {sqld_ms:.1f} | {sent} |")
    finally:
        stop_process(other)
        stack.stop()
        fake.close()


if __name__ == "__main__":
    main()
