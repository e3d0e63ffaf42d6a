"""``octseg review`` as a command: it serves on 127.0.0.1, a free port and a fresh token per run,
answers only that token, and bad folders are one-line errors."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from octseg.cli import main
from octseg.core import atomic
from octseg.core.classes import LUMEN
from octseg.io.labels import LabelFile, save_labels

pytest.importorskip("uvicorn")


def tiny_dataset(root: Path) -> Path:
    pb = root / "pb-1"
    pb.mkdir(parents=True)
    frames = (np.random.default_rng(0).random((4, 32, 40)) * 255).astype(np.uint8)
    atomic.save_npz(
        pb / "image.npz",
        frames=frames,
        space=np.array("polar"),
        pixel_spacing_mm=0.05,
        frame_spacing_mm=0.2,
    )
    labels = np.zeros((4, 32, 40), np.uint8)
    labels[:, :, :12] = LUMEN
    save_labels(pb / "labels.npz", LabelFile(labels, "polar", 0.05, 0.2))
    return root


def _url(proc: subprocess.Popen, timeout: float = 90.0) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    end, seen = time.monotonic() + timeout, ""
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen += line
        m = re.search(r"(http://\S+)", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no URL printed; output: {seen!r}")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serves_on_loopback_with_a_token(tmp_path):
    ds = tiny_dataset(tmp_path / "ds")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "octseg", "review", str(ds), "--reviewer", "cli"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C must reach the server however the tests were launched: a background job of a
        # non-interactive shell (`cmd &`) ignores SIGINT, and an ignored SIGINT is inherited
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    errors: list[str] = []  # drained, so a full stderr pipe can never block the server's exit
    threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    try:
        url = _url(proc)
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", url)
        assert m, url
        port, token = int(m.group(1)), m.group(2)
        assert port > 1024 and len(token) >= 24
        base = f"http://127.0.0.1:{port}"
        assert _status(url) == 200
        assert _status(f"{base}/api/cohort?token={token}") == 200
        assert _status(f"{base}/") == 403
        assert _status(f"{base}/api/cohort?token={token[:-1]}") == 403
        assert _status(f"{base}/api/pb/pb-1/frame/0/pixels") == 403
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), "".join(errors)[-3000:]


def test_bad_folders_are_one_line_errors(tmp_path, capsys):
    assert main(["review", str(tmp_path / "missing")]) == 1
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["review", str(tmp_path / "empty")]) == 1
    assert "neither an inference output" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text("{broken")
    assert main(["review", str(tmp_path / "out")]) == 1
    assert "manifest.json: not a readable JSON object" in capsys.readouterr().err
