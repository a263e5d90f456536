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

sys.path.insert(0, str(BINDINGS))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relay(tmp_path):
    """A real relay on loopback; yields its card."""
    port = _free_port()
    key = tmp_path / "relay.key"
    base = [str(STRELAY), "--listen", f"127.0.0.1:{port}", "--no-metrics", "--key-file", str(key)]
    card = subprocess.run(base + ["card"], check=True, capture_output=True, text=True).stdout.strip()
    process = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("strelay did not start: " + process.stderr.read().decode())
            time.sleep(0.02)
    yield card
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
