from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/ (the reference geometry implementation) is importable as ``benchmarks.*``
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("OCTSEG_SHARED", ROOT.parent / "shared"))
DANILOV = SHARED / "data" / "ivoct-danilov" / "pullback-001"


@pytest.fixture(scope="session", autouse=True)
def _subprocess_tmpdir(tmp_path_factory):
    """Temporary files of the processes the tests start (torchrun's ``torchelastic_*`` log
    folders, which it does not remove) go under pytest's own temporary folder, not /tmp."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmp_path_factory.mktemp("subprocess-tmp")))
        yield


@pytest.fixture(scope="session")
def danilov_dir() -> Path:
    """The real pullback in ../shared/data; tests using it skip where it is absent."""
    if not (DANILOV / "frames").is_dir():
        pytest.skip(f"real pullback not found at {DANILOV} (../shared/data is absent)")
    return DANILOV


def run_group(cmd, *, timeout: float, **kwargs):
    """``subprocess.run`` in a new process group that is killed whole on timeout, so that
    torchrun workers never outlive a failed test."""
    import signal
    import subprocess

    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    with subprocess.Popen(
        cmd,
        start_new_session=True,
        stdout=subprocess.PIPE if kwargs.pop("capture_output") else None,
        stderr=subprocess.PIPE,
        **kwargs,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
