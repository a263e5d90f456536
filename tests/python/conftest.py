"""Fixtures for the binding tests: the generated `offst` module and a real `strelay` process."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINDINGS = Path(os.environ.get("OFFST_PYTHON_BINDINGS", REPO / "target" / "bindings" / "python"))
STRELAY = Path(os.environ.get("OFFST_STRELAY", REPO / "target" / "debug" / "strelay"))
STINDEX = Path(os.environ.get("OFFST_STINDEX", REPO / "target" / "debug" / "stindex"))

sys.path.insert(0, str(BINDINGS))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(process, port, name):
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"{name} did not start: " + process.stderr.read().decode())
            time.sleep(0.02)


def _stop(process):
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def index(tmp_path):
    """A real index server on loopback; yields its address as KEY@HOST:PORT."""
    port = _free_port()
    base = [str(STINDEX), "--listen", f"127.0.0.1:{port}", "--key-file", str(tmp_path / "index.key")]
    card = subprocess.run(base + ["card"], check=True, capture_output=True, text=True).stdout
    key = next(line.split('"')[1] for line in card.splitlines() if line.startswith("public_key"))
    process = subprocess.Popen(base + ["run"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_port(process, port, "stindex")
    yield f"{key}@127.0.0.1:{port}"
    _stop(process)


@pytest.fixture
def relay(tmp_path):
    """A real relay on loopback; yields its card."""
    port = _free_port()
    key = tmp_path / "relay.key"
    base = [str(STRELAY), "--listen", f"127.0.0.1:{port}", "--no-metrics", "--key-file", str(key)]
    card = subprocess.run(base + ["card"], check=True, capture_output=True, text=True).stdout.strip()
    process = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_port(process, port, "strelay")
    yield card
    _stop(process)
