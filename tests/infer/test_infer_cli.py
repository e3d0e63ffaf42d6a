"""`python infer.py` end to end: a tiny cohort with a corrupt file, resume after kill -9, and
torchrun sharding over two CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_group
from model_helpers import TINY_MODEL

from octseg.core import atomic
from octseg.geometry.tables import FRAME_COLUMNS, read_csv
from octseg.io.labels import load_labels
from octseg.model.predictor import save_untrained_checkpoint

ROOT = Path(__file__).resolve().parents[2]
GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.05}


def _cohort(
    root: Path, n: int = 3, frames: int = 6, corrupt: bool = True, dicom: bool = False
) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if i % 2 == 0:  # polar
            img = (rng.random((frames, 60, 40)) * 255).astype(np.uint8)
            kw = {"space": np.array("polar")}
        else:  # Cartesian, off-centre catheter
            img = (rng.random((frames, 64, 72)) * 255).astype(np.uint8)
            kw = {"space": np.array("cartesian"), "catheter_center": np.array([30.0, 37.0])}
        atomic.save_npz(
            root / f"pb{i}.npz",
            frames=img,
            pixel_spacing_mm=np.float64(0.06),
            frame_spacing_mm=np.float64(0.2),
            **kw,
        )
    if dicom:
        from octseg.io.dicom_write import write_ivoct_dicom

        write_ivoct_dicom(
            root / "dcm.dcm",
            (rng.random((frames, 60, 40)) * 255).astype(np.uint8),
            space="polar",
            pixel_spacing_mm=0.06,
            frame_spacing_mm=0.2,
            patient_name="Doe^Jane",
            patient_id="SECRET-ID-123",
        )
    if corrupt:
        (root / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
        # readable image but no spacing anywhere: must fail with a clear message
        atomic.save_npz(
            root / "nospacing.npz", frames=np.zeros((2, 8, 8), np.uint8), space=np.array("polar")
        )
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_untrained_checkpoint(
        tmp_path_factory.mktemp("ck") / "model.pt", model_cfg=TINY_MODEL, net_grid=GRID
    )


def _cmd(ckpt: Path, inp: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "infer.py"),
        f"checkpoint={ckpt}",
        f"input={inp}",
        f"output={out}",
        "progress=false",
        "writers=2",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def test_cli_end_to_end_with_corrupt_inputs_and_rerun(tmp_path, ckpt):
    inp = _cohort(tmp_path / "in", dicom=True)
    out = tmp_path / "out"
    res = subprocess.run(
        _cmd(ckpt, inp, out), capture_output=True, text=True, env=_env(), timeout=240
    )
    assert res.returncode == 1, res.stderr  # failures recorded -> non-zero exit
    assert "frames/s" in res.stdout
    man = json.loads((out / "manifest.json").read_text())
    st = {k: v["status"] for k, v in man["pullbacks"].items()}
    assert st == {
        "corrupt": "failed",
        "dcm": "done",
        "nospacing": "failed",
        "pb0": "done",
        "pb1": "done",
        "pb2": "done",
    }
    assert "corrupt.npz" in man["pullbacks"]["corrupt"]["error"]
    assert "spacing" in man["pullbacks"]["nospacing"]["error"]
    assert man["frames_processed"] == 24 and man["n_failed"] == 2
    # DICOM input: a DICOM Segmentation beside the labels, without the patient's identifiers
    import pydicom

    from octseg.io.dicomseg import read_dicom_seg

    seg_labels, _ = read_dicom_seg(out / "dcm" / "seg.dcm", 6)
    np.testing.assert_array_equal(seg_labels, load_labels(out / "dcm" / "labels.npz").labels)
    ds = pydicom.dcmread(out / "dcm" / "seg.dcm")
    assert "SECRET-ID-123" not in str(ds.get("PatientID", "")) and "Doe" not in str(
        ds.get("PatientName", "")
    )
    for f in (out / "dcm").rglob("*"):
        if f.is_file():
            assert b"SECRET-ID-123" not in f.read_bytes(), f
    for pid, space, shape in (("pb0", "polar", (6, 60, 40)), ("pb1", "cartesian", (6, 64, 72))):
        d = out / pid
        lf = load_labels(d / "labels.npz")  # schema v1, in the input's own space and grid
        assert lf.space == space and lf.labels.shape == shape
        if space == "cartesian":
            assert lf.center == (30.0, 37.0)
        rows = read_csv(d / "frames.csv", FRAME_COLUMNS)
        assert [r["frame"] for r in rows] == list(range(6))
        done = json.loads((d / "done.json").read_text())
        assert {"labels.npz", "frames.csv", "struts.csv", "summary.json", "report.html"} <= set(
            done["outputs"]
        )
        assert any(k.startswith("overlays/frame_") for k in done["outputs"])
        assert "Calcium lesions" in (d / "report.html").read_text()
        assert not list(d.glob(".tmp-*"))
    cohort = read_csv(out / "summary.csv", ["pullback_id", "item"])
    assert {r["pullback_id"] for r in cohort} == {"dcm", "pb0", "pb1", "pb2"}

    # the same command again: finished pullbacks are skipped, failed ones retried
    mtime = (out / "pb0" / "done.json").stat().st_mtime_ns
    res2 = subprocess.run(
        _cmd(ckpt, inp, out), capture_output=True, text=True, env=_env(), timeout=240
    )
    assert res2.returncode == 1
    man2 = json.loads((out / "manifest.json").read_text())
    assert all(man2["pullbacks"][p]["skipped"] for p in ("dcm", "pb0", "pb1", "pb2"))
    assert man2["frames_processed"] == 0
    assert (out / "pb0" / "done.json").stat().st_mtime_ns == mtime


def test_cli_usage_and_checkpoint_errors(tmp_path, ckpt):
    inp = _cohort(tmp_path / "in", n=1, corrupt=False)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    res = subprocess.run(
        _cmd(bad, inp, tmp_path / "o"), capture_output=True, text=True, env=_env(), timeout=120
    )
    assert res.returncode == 2
    assert "bad.pt" in res.stderr and "checkpoint" in res.stderr
    assert "Traceback" not in res.stderr


def _children(pid: int) -> set[int]:
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("render_processes", [0, 1])
def test_kill_minus_9_then_resume(tmp_path, ckpt, render_processes):
    inp = _cohort(tmp_path / "in", n=6, frames=16, corrupt=False)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cmd(ckpt, inp, out, "writers=1", "prefetch=1", f"render_processes={render_processes}"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    children: set[int] = set()
    try:
        while time.time() < deadline and not list(out.glob("pb*/done.json")):
            if proc.poll() is not None:
                pytest.fail("infer.py ended before it could be killed")
            time.sleep(0.02)
        if Path("/proc").is_dir():
            children = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if render_processes and Path("/proc").is_dir():
        assert children, "no render process was running"
        t_end = time.time() + 15  # render workers notice the parent is gone within ~1 s
        while time.time() < t_end and any(_alive(c) for c in children):
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), "render processes outlived a kill -9"
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("pb*/done.json")}
    assert 1 <= len(finished) < 6, finished  # killed mid-run
    res = subprocess.run(
        _cmd(ckpt, inp, out), capture_output=True, text=True, env=_env(), timeout=240
    )
    assert res.returncode == 0, res.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["n_done"] == 6 and man["n_failed"] == 0
    for pid, rec in man["pullbacks"].items():
        assert rec["skipped"] == (pid in finished), pid
    for pid, mtime in finished.items():  # finished ones untouched
        assert (out / pid / "done.json").stat().st_mtime_ns == mtime
    for i in range(6):
        d = out / f"pb{i}"
        assert load_labels(d / "labels.npz").n_frames == 16
        assert not list(d.glob(".tmp-*")) and not list(d.glob("overlays/.tmp-*"))


def test_torchrun_two_cpu_processes(tmp_path, ckpt):
    inp = _cohort(tmp_path / "in", n=4, frames=4, corrupt=True)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "infer.py"),
        f"checkpoint={ckpt}",
        f"input={inp}",
        f"output={out}",
        "progress=false",
    ]
    res = run_group(cmd, env=_env(), timeout=300)
    assert res.returncode != 0  # the corrupt inputs failed
    man = json.loads((out / "manifest.json").read_text())
    recs = man["pullbacks"]
    assert man["world_size"] == 2 and len(recs) == 6
    ids = list(recs)  # input order: corrupt, nospacing, pb0..pb3; rank r takes ids[r::2]
    assert {recs[i]["rank"] for i in ids[0::2]} == {0} and {recs[i]["rank"] for i in ids[1::2]} == {
        1
    }
    assert {k for k, v in recs.items() if v["status"] == "done"} == {"pb0", "pb1", "pb2", "pb3"}
    assert man["frames_processed"] == 16
    cohort = read_csv(out / "summary.csv", ["pullback_id"])
    assert {r["pullback_id"] for r in cohort} == {"pb0", "pb1", "pb2", "pb3"}
    assert res.stdout.count("octseg infer:") == 1  # one final line, from rank 0
