"""Write nginx's configuration for N replicas from `nginx.conf.template`:

    python -m deploy.render_nginx --listen 127.0.0.1:8500 --folder deploy/run/nginx \
        127.0.0.1:8501 127.0.0.1:8502

It prints the file it wrote; start nginx with `nginx -p FOLDER -c FOLDER/nginx.conf`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def route(index: int) -> str:
    """The route cookie's value for the replica at `index` of the list (0-based): r1, r2…"""
    return f"r{index + 1}"


def render(*, listen: str, replicas: list[str], folder: Path, daemon: bool = False) -> Path:
    """The configuration in `folder/nginx.conf` (with nginx's temp folders beside it)."""
    if not replicas:
        raise ValueError("at least one replica address (host:port) is needed")
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # A replica that fails twice within 5 s is left alone for 5 s, then tried again.
    servers = [f"server {address} max_fails=2 fail_timeout=5s" for address in replicas]
    routes = [route(index) for index in range(len(replicas))]
    pinned = [
        "\n".join(
            [
                f"    upstream lorastudio_{name} {{",
                f"        {server};",
                *(f"        {other} backup;" for other in servers if other != server),
                "    }",
            ]
        )
        for name, server in zip(routes, servers, strict=True)
    ]
    text = (
        TEMPLATE.read_text()
        .replace("{{UPSTREAMS}}", "\n".join(f"        {server};" for server in servers))
        .replace("{{PINNED}}", "\n\n".join(pinned))
        .replace("{{ROUTES}}", "\n".join(f"        {name} lorastudio_{name};" for name in routes))
        .replace(
            "{{SERVED_BY}}",
            "\n".join(
                f'        "~(^|, ){re.escape(address)}$" {name};'
                for name, address in zip(routes, replicas, strict=True)
            ),
        )
        .replace("{{LISTEN}}", listen)
        .replace("{{PREFIX}}", str(folder))
        .replace("{{DAEMON}}", "on" if daemon else "off")
    )
    config = folder / "nginx.conf"
    config.write_text(text)
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("replicas", nargs="+", help="each replica's host:port")
    parser.add_argument("--listen", default="127.0.0.1:8500", help="where nginx listens")
    parser.add_argument("--folder", type=Path, default=Path("deploy/run/nginx"))
    parser.add_argument("--daemon", action="store_true", help="let nginx go to the background")
    arguments = parser.parse_args(argv)
    print(
        render(
            listen=arguments.listen,
            replicas=arguments.replicas,
            folder=arguments.folder,
            daemon=arguments.daemon,
        )
    )


if __name__ == "__main__":
    main()
