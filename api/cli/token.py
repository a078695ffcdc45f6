"""``nodefarm token add NAME`` and ``nodefarm token list``: the named API tokens of a token file.

The file is the one ``--auth-token-file`` reads (``--file FILE``, else ``NODEFARM_AUTH_TOKEN_FILE``):
one ``name token`` per line. ``add`` creates it readable by its owner only (0600), appends a line
with a fresh random token (32 bytes, URL-safe) and prints the token once: it is not shown again, and
a running farm accepts it at once (the API re-reads the file when it changes). ``list`` prints the
names only. Revoking a token is deleting its line.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from api import auth

FILE_MODE = 0o600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add a named token to the token file and print it once")
    add.add_argument("name", metavar="NAME", help="who the token is for; the submitter of their runs")
    lst = sub.add_parser("list", help="print the names in the token file (never the tokens)")
    for one in (add, lst):
        one.add_argument("--file", metavar="FILE", help="token file (default NODEFARM_AUTH_TOKEN_FILE)")


def token_file(ns: argparse.Namespace) -> Path | None:
    value = ns.file or os.environ.get("NODEFARM_AUTH_TOKEN_FILE")
    return Path(value).expanduser() if value else None


def run(ns: argparse.Namespace) -> int:
    path = token_file(ns)
    if path is None:
        print("nodefarm token: no token file: pass --file FILE or set NODEFARM_AUTH_TOKEN_FILE", file=sys.stderr)
        return 2
    if ns.token_command == "add":
        return add(path, ns.name)
    return list_names(path)


def add(path: Path, name: str) -> int:
    if not auth.NAME_PATTERN.fullmatch(name) or name == auth.INTERNAL_NAME:
        print(f"nodefarm token: {name!r} is not a usable name: 1 to 64 letters, digits and ._@+- "
              f"(starting with a letter or digit), not {auth.INTERNAL_NAME}", file=sys.stderr)
        return 2
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeError) as exc:
        print(f"nodefarm token: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if name in auth.parse(existing).names:
        print(f"nodefarm token: {path} already has a token named {name}; delete its line to replace it", file=sys.stderr)
        return 1
    token = auth.new_token()
    line = ("" if not existing or existing.endswith("\n") else "\n") + f"{name} {token}\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError as exc:
        print(f"nodefarm token: cannot write {path}: {exc}", file=sys.stderr)
        return 1
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        print(f"nodefarm token: warning: {path} is readable by others (mode {mode:o}); chmod 600 it", file=sys.stderr)
    print(token)
    print(f"nodefarm token: added {name} to {path}; the token above is shown only this once", file=sys.stderr)
    return 0


def list_names(path: Path) -> int:
    try:
        parsed = auth.read(path)
    except FileNotFoundError:
        print(f"nodefarm token: {path} does not exist (create it with `nodefarm token add NAME --file {path}`)",
              file=sys.stderr)
        return 1
    except (OSError, UnicodeError) as exc:
        print(f"nodefarm token: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    for name in parsed.names:
        print(name)
    for problem in parsed.problems:
        print(f"nodefarm token: {path}: {problem} (ignored by the farm)", file=sys.stderr)
    return 0
