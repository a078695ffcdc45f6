"""``nodefarm blocklist [list]`` and ``nodefarm blocklist lift NAME``: the bad-worker blocklist of a
running farm, through its API (``GET`` / ``DELETE /nodefarm/blocklist``, :mod:`api.routes.blocklist`),
so an operator needs the farm's address (and a token when it has them), not its Redis.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from urllib.parse import quote

import requests

from api.cli.submit import DEFAULT_SERVER
from nodes.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "lift"), default="list",
                        help="list the blocklist (default), or lift NAME off it")
    parser.add_argument("name", nargs="?", metavar="NAME", help="the worker to lift (lift only)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"server URL (default {DEFAULT_SERVER})")


def _headers() -> dict[str, str]:
    token = Settings.from_env().api_token  # NODEFARM_API_TOKEN, when the farm has tokens
    return {"Authorization": f"Bearer {token}"} if token else {}


def format_listing(data: dict[str, Any], now: float | None = None) -> str:
    """The blocklist as lines for a terminal."""
    now = time.time() if now is None else now
    entries = data.get("blocklist") or {}
    lines = [f"blocklist: {data.get('threshold')} failures in {data.get('window_s')} s put a worker on it"]
    if not entries:
        lines.append("no worker is blocklisted")
    for name, e in entries.items():
        left = max(0, int(float(e["until"]) - now))
        lines.append(f"{name}  blocklisted, {left} s left, {e['failures']} failures: {e['reason']}")
    counted = {n: c for n, c in (data.get("failures") or {}).items() if c and n not in entries}
    for name, count in counted.items():
        lines.append(f"{name}  {count} failure(s) counted")
    return "\n".join(lines)


def run(ns: argparse.Namespace) -> int:
    base = ns.server.rstrip("/")
    try:
        if ns.action == "lift":
            if not ns.name:
                print("nodefarm blocklist lift: name the worker (see `nodefarm blocklist list`)", file=sys.stderr)
                return 2
            res = requests.delete(f"{base}/api/nodefarm/blocklist/{quote(ns.name, safe='')}", headers=_headers(),
                                  timeout=30)
            if res.status_code == 404:
                print(f"nodefarm blocklist: {ns.name} is not on the blocklist", file=sys.stderr)
                return 1
            res.raise_for_status()
            print(f"lifted {ns.name}")
            return 0
        res = requests.get(f"{base}/api/nodefarm/blocklist", headers=_headers(), timeout=30)
        res.raise_for_status()
        print(format_listing(res.json()))
        return 0
    except (requests.RequestException, ValueError) as exc:
        print(f"nodefarm blocklist: {base}: {exc}", file=sys.stderr)
        return 1
