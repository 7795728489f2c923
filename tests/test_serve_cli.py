"""``semilearn serve`` on the command line: what the console says, the warning off the loopback
interface, and bad flags or a taken port as one error line (uvicorn stopped before it listens)."""
from __future__ import annotations

import socket

import pytest

from conftest import run_cli


@pytest.fixture
def no_listening(monkeypatch):
    """uvicorn's server returns at once; the sockets it was given are recorded."""
    import uvicorn

    given = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: given.extend(sockets or []))
    yield given
    for sock in given:
        sock.close()


def test_the_console_names_the_model_and_the_address(served_models, no_listening, capsys):
    rc, out, err = run_cli(["serve", "--model", served_models["onnx"], "--port", "0"], capsys)
    assert rc == 0 and err == ""
    port = no_listening[0].getsockname()[1]
    assert no_listening[0].getsockname()[0] == "127.0.0.1" and port > 0
    first, second = out.strip().splitlines()
    assert first == (f"semilearn serve: serving onnx {served_models['onnx'].resolve()} (leaf_fixmatch on digits, "
                     f"10 classes, 16 px input)")
    url = f"http://127.0.0.1:{port}/"
    assert second == f"semilearn serve: open {url} in a browser (API: {url}docs); Ctrl-C stops"


def test_a_checkpoint_or_its_run_folder_is_served(served_models, no_listening, capsys):
    run_folder = served_models["checkpoint"].parent
    rc, out, _ = run_cli(["serve", "--load_path", run_folder, "--port", "0", "--device", "cpu"], capsys)
    assert rc == 0
    assert out.startswith(f"semilearn serve: serving checkpoint {run_folder.resolve()}/latest_model.pth "
                          f"(leaf_fixmatch on digits")


def test_listening_beyond_the_loopback_warns_in_one_line(served_models, no_listening, capsys):
    rc, out, err = run_cli(["serve", "--model", served_models["onnx"], "--host", "0.0.0.0", "--port", "0"], capsys)
    assert rc == 0 and no_listening[0].getsockname()[0] == "0.0.0.0"
    assert err == ("semilearn serve: warning: listening on 0.0.0.0, reachable from other machines; the server has "
                   "no authentication and no TLS\n")


@pytest.mark.parametrize("flags,words", [
    (["--port", "70000"], "--port is 70000; expected 0..65535"),
    (["--queue", "-1"], "--queue -1; expected positive limits and a queue of 0 or more"),
    (["--margin", "3"], "--margin 3.0; expected a positive integer and a margin in 0..2"),
    (["--detector", "eyes"], "argument --detector: invalid choice: 'eyes'"),
    (["--load_path", "x.pth", "--model", "y.onnx"], "both --load_path and --model given"),
    (["--model", "missing.onnx"], "--model 'missing.onnx' does not exist"),
])
def test_bad_flags_are_one_error_line(flags, words, no_listening, capsys):
    rc, out, err = run_cli(["serve", *flags], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("semilearn serve: error: ") and words in err, err
    assert no_listening == []


def test_a_taken_port_is_one_error_line(served_models, no_listening, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        rc, out, err = run_cli(["serve", "--model", served_models["onnx"], "--port", port], capsys)
    assert rc == 2 and out == "" and no_listening == []
    assert err.startswith(f"semilearn serve: error: cannot listen on 127.0.0.1:{port} (Address already in use); "
                          f"expected a free port")
