"""Named API tokens, pure parts (issue 9, item 3): the token file's lines, the constant-time look-up,
re-reading the file when it changes, ``nodefarm token add/list``, ``nodefarm up`` refusing to listen
off loopback without tokens, and the guard's answers on a bare Flask app."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from flask import Flask

from api import auth
from api.cli import main as cli
from api.cli import supervisor

A = "a" * 20
B = "b" * 43


# ---- the file -------------------------------------------------------------------------------------


def test_parse_reads_name_token_lines_with_comments_and_blank_lines() -> None:
    parsed = auth.parse(f"# the farm's users\n\nalice {A}\n   bob\t{B}   # since May\n")
    assert parsed.tokens == (("alice", A), ("bob", B))
    assert parsed.names == ["alice", "bob"] and parsed.problems == ()


@pytest.mark.parametrize("line, problem", [
    ("alice", "expected `name token`"),
    (f"alice {A} extra", "expected `name token`"),
    ("alice short", "shorter than 16"),
    (f"farm-internal {A}", "not a usable name"),
    (f"-x {A}", "not a usable name"),
    (f"al/ice {A}", "not a usable name"),
])
def test_a_bad_line_is_left_out_and_reported_by_number_without_its_token(line: str, problem: str) -> None:
    parsed = auth.parse(f"carol {B}\n{line}\n")
    assert parsed.names == ["carol"]
    (reported,) = parsed.problems
    assert reported.startswith("line 2: ") and problem in reported
    assert A not in reported


def test_a_name_or_a_token_given_twice_counts_once() -> None:
    parsed = auth.parse(f"alice {A}\nalice {B}\nbob {A}\n")
    assert parsed.tokens == (("alice", A),)
    assert [p.split(":")[0] for p in parsed.problems] == ["line 2", "line 3"]


# ---- the look-up ----------------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    """Write and move the mtime on, as an edit a second later would (file systems with coarse mtimes)."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(old + 2_000_000_000, old + 2_000_000_000))


def test_lookup_gives_the_name_of_a_known_token_and_none_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    write(path, f"alice {A}\nbob {B}\n")
    tokens = auth.TokenFile(path, internal="i" * 43)
    assert [tokens.lookup(t) for t in (A, B, "i" * 43)] == ["alice", "bob", auth.INTERNAL_NAME]
    for wrong in (None, "", A[:-1], A + "a", B.upper(), "alice", " " + A):
        assert tokens.lookup(wrong) is None, wrong


def test_lookup_compares_digests_against_every_token_in_constant_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hmac.compare_digest on equal-length digests, and no early exit: the first token, the last one
    and an unknown one cost the same comparisons."""
    path = tmp_path / "tokens"
    write(path, "".join(f"user{i} {chr(97 + i) * 30}\n" for i in range(5)))
    tokens = auth.TokenFile(path, internal="z" * 30)
    calls: list[tuple[int, int]] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    counts = []
    for presented in ("a" * 30, "e" * 30, "z" * 30, "nobody-nobody-nobody"):
        calls.clear()
        tokens.lookup(presented)
        counts.append(len(calls))
        assert all(la == lb == 32 for la, lb in calls)
    assert counts == [6, 6, 6, 6]


def test_the_file_is_read_again_when_it_changes_and_only_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens"
    write(path, f"alice {A}\n")
    reads: list[Path] = []
    real_read = auth.read
    monkeypatch.setattr(auth, "read", lambda p: (reads.append(p), real_read(p))[1])
    tokens = auth.TokenFile(path)
    for _ in range(5):
        assert tokens.lookup(A) == "alice"
    assert tokens.lookup(B) is None
    assert len(reads) == 1  # unchanged: not read again
    write(path, f"alice {A}\nbob {B}\n")
    assert tokens.lookup(B) == "bob" and len(reads) == 2  # added: no restart
    write(path, f"bob {B}\n")
    assert tokens.lookup(A) is None  # removed: revoked
    replacement = tmp_path / "tokens.new"
    replacement.write_text(f"carol {A}\n")
    os.replace(replacement, path)  # an editor's atomic save (a new inode)
    assert tokens.lookup(A) == "carol"
    path.unlink()
    assert tokens.lookup(A) is None  # no file: nobody (fails closed)


# ---- nodefarm token ----------------------------------------------------------------------------


def test_token_add_appends_a_random_token_to_a_0600_file_and_prints_it_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf" / "tokens.txt"
    assert cli.main(["token", "add", "alice", "--file", str(path)]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) == 43 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"alice {token}\n"
    path.write_text(path.read_text() + "# no newline at the end")
    assert cli.main(["token", "add", "bob", "--file", str(path)]) == 0
    second = capsys.readouterr().out.strip()
    assert second != token and auth.read(path).tokens == (("alice", token), ("bob", second))
    assert cli.main(["token", "add", "alice", "--file", str(path)]) == 1  # a name is never given twice
    assert "already has a token named alice" in capsys.readouterr().err
    for bad in ("farm-internal", "has space", "", "a" * 65, "#x"):
        assert cli.main(["token", "add", bad, "--file", str(path)]) == 2, bad
    assert auth.read(path).names == ["alice", "bob"]


def test_token_list_prints_names_only(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(f"alice {A}\nbob {B}\nbroken\n")
    monkeypatch.setenv("NODEFARM_AUTH_TOKEN_FILE", str(path))
    assert cli.main(["token", "list"]) == 0
    out, err = capsys.readouterr()
    assert out == "alice\nbob\n" and A not in out + err and "line 3" in err
    monkeypatch.delenv("NODEFARM_AUTH_TOKEN_FILE")
    assert cli.main(["token", "list"]) == 2
    assert "--file" in capsys.readouterr().err
    assert cli.main(["token", "list", "--file", str(tmp_path / "missing")]) == 1


# ---- nodefarm up: no open farm off loopback --------------------------------------------------------


def record_plans(monkeypatch: pytest.MonkeyPatch) -> list[supervisor.FarmPlan]:
    plans: list[supervisor.FarmPlan] = []
    monkeypatch.setattr(supervisor, "run_farm", lambda plan: plans.append(plan) or 0)
    monkeypatch.setattr(supervisor, "cuda_devices", lambda: ())
    monkeypatch.delenv("NODEFARM_AUTH_TOKEN_FILE", raising=False)
    monkeypatch.delenv("NODEFARM_API_TOKEN", raising=False)
    return plans


@pytest.mark.parametrize("listen", [["--listen"], ["--listen", "0.0.0.0"], ["--listen", "192.168.1.5"], ["--listen", "::"],
                                    ["--listen", "farm.example"]])
def test_up_off_loopback_without_tokens_refuses_to_start(listen: list[str], monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    plans = record_plans(monkeypatch)
    assert cli.main(["up", *listen]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen" in err and "--auth-token-file" in err and "--insecure" in err
    assert plans == []
    assert cli.main(["up", *listen, "--insecure"]) == 0
    assert len(plans) == 1 and "NODEFARM_AUTH_TOKEN_FILE" not in plans[0].env


@pytest.mark.parametrize("listen", [[], ["--listen", "127.0.0.1"], ["--listen", "127.3.4.5"], ["--listen", "::1"],
                                    ["--listen", "localhost"]])
def test_up_on_loopback_needs_no_tokens(listen: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    plans = record_plans(monkeypatch)
    assert cli.main(["up", *listen]) == 0
    assert len(plans) == 1 and "NODEFARM_API_TOKEN" not in plans[0].env


def test_up_with_tokens_listens_anywhere_and_gives_its_children_an_internal_token(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plans = record_plans(monkeypatch)
    path = tmp_path / "tokens.txt"
    assert cli.main(["up", "--listen", "--auth-token-file", str(path)]) == 2  # no such file yet
    path.write_text(f"alice {A}\n")
    before = path.read_text()
    assert cli.main(["up", "--listen", "--auth-token-file", str(path)]) == 0
    assert cli.main(["up", "--listen", "--auth-token-file", str(path)]) == 0
    first, second = (p.env for p in plans)
    assert first["NODEFARM_AUTH_TOKEN_FILE"] == str(path.resolve())
    assert len(first["NODEFARM_API_TOKEN"]) >= 43 and first["NODEFARM_API_TOKEN"] != second["NODEFARM_API_TOKEN"]
    assert path.read_text() == before  # never written to the user's file


# ---- the guard on a bare app ------------------------------------------------------------------------


@pytest.fixture()
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "tokens"
    path.write_text(f"alice {A}\n")
    app = Flask("t")
    auth.install(app, path, internal="i" * 43)
    app.add_url_rule("/", "index", lambda: "editor")
    app.add_url_rule("/api/queue", "queue", lambda: {"submitter": auth.submitter()})
    return app.test_client()


def test_the_guard_answers_401_to_api_calls_and_sends_browsers_to_the_login_page(client) -> None:  # type: ignore[no-untyped-def]
    res = client.get("/api/queue")
    assert res.status_code == 401 and res.json["error"]["type"] == "unauthorized"
    assert client.get("/api/queue", headers={"Authorization": f"Bearer {A}"}).json == {"submitter": "alice"}
    assert client.get("/api/queue", headers={"Authorization": f"Bearer {'i' * 43}"}).json == {"submitter": "farm-internal"}
    page = client.get("/?x=1")
    assert page.status_code == 303 and page.headers["Location"] == "/nodefarm/login?next=%2F%3Fx%3D1"
    html = client.get("/api/queue", headers={"Accept": "text/html"})
    assert html.status_code == 303
    for path in ("//evil.example/?token=" + A, "/\\evil.example/?token=" + A):  # the token in a page URL
        res = client.get(path, headers={"Accept": "text/html"})
        assert res.status_code == 303 and res.headers["Location"] in ("/", "/%5Cevil.example/"), path
        assert f"nodefarm_token={A};" in res.headers["Set-Cookie"]
    login = client.get("/nodefarm/login?next=/%22%3E%3Cscript%3E")
    assert login.status_code == 200 and "<script>" not in login.get_data(as_text=True)


@pytest.mark.parametrize("value, safe", [("/", "/"), ("/nodefarm/?a=1", "/nodefarm/?a=1"), ("//evil.example", "/"),
                                         ("/\\evil.example", "/"), ("https://evil.example/", "/"), ("evil", "/"),
                                         ("javascript:alert(1)", "/"), ("/a\nb", "/"), (None, "/")])
def test_next_is_only_a_path_of_this_site(value: str | None, safe: str) -> None:
    assert auth.safe_next(value) == safe
