"""``campaign-api``'s start-up refusals, in-process: one line and a named exit code. (The real
process, its ready file and its signals: tests/integration/test_api_on_moto.py.)"""

from __future__ import annotations

import pytest

from api.cli import main
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_USAGE
from tests.api.support import KEYS
from tests.unit.producer_support import MemoryWorld


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    try:
        code = main(list(argv), build=MemoryWorld().build)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.splitlines()


def test_without_operator_keys_the_api_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "--port", "0")
    assert code == EXIT_CONFIG
    assert err == ["campaign-api: invalid OPERATOR_API_KEYS: must be set (name:key,name2:key2)"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"alice{KEYS['alice']}", "entry 1 is not name:key"),
        (f"alice:{KEYS['alice']},bob:", "entry 2 is not name:key"),
        (f"al.ice:{KEYS['alice']}", "entry 1: the name must be"),
        (f"alice:{KEYS['alice']},alice:{KEYS['bob']}", "entry 2: the name 'alice' appears twice"),
        (f"alice:{KEYS['alice']},bob:{KEYS['alice']}", "entry 2: two operators share one key"),
    ],
)
def test_malformed_operator_keys_are_one_line_that_never_shows_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("OPERATOR_API_KEYS", value)
    code, err = run(capsys)
    assert code == EXIT_CONFIG
    assert len(err) == 1
    assert err[0].startswith("campaign-api: invalid OPERATOR_API_KEYS: ")
    assert problem in err[0]
    for key in KEYS.values():
        assert key not in err[0]


def test_other_bad_settings_are_one_line_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR_API_KEYS", f"alice:{KEYS['alice']}")
    monkeypatch.setenv("API_MAX_UPLOAD_BYTES", "lots")
    code, err = run(capsys)
    assert code == EXIT_CONFIG
    assert len(err) == 1
    assert err[0].startswith("campaign-api: invalid API_MAX_UPLOAD_BYTES: ")


@pytest.mark.parametrize("argv", [["--port", "http"], ["--port", "70000"], ["--what"]])
def test_bad_arguments_are_one_line_and_exit_64(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert len(err) == 1
    assert err[0].startswith("campaign-api: ")


def test_the_listening_socket_is_tcp_so_each_connection_gets_tcp_nodelay() -> None:
    """asyncio sets TCP_NODELAY on accepted connections only when the listening socket's proto
    is IPPROTO_TCP; with proto 0 every keep-alive answer waited ~40 ms for a delayed ACK."""
    import socket

    from campaigns.web.serving import listen

    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
