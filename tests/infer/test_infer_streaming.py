"""Reading overlaps the model inside one pullback (GridStream), several reader threads, and a
pullback whose frames fail to decode half way through."""

from __future__ import annotations

import re
import threading
import time
import zipfile

import numpy as np
import pytest
import torch
from model_helpers import polar_npz, quiet_settings
from test_infer_regressions import oracle
from test_infer_units import FakePullback, oracle_predictor

from octseg.core import atomic
from octseg.core.errors import InputError
from octseg.infer.pipeline import InferSettings, n_readers, run_inference
from octseg.io import read_pullback
from octseg.io.labels import load_labels
from octseg.model.predictor import GridStream


class SlowPullback(FakePullback):
    """Frames arrive two at a time, 20 ms apart, like a slow decoder."""

    def iter_chunks(self, chunk=32):
        for s in range(0, self.n_frames, 2):
            time.sleep(0.02)
            yield s, self.frames[s : s + 2]


def test_grid_stream_waits_for_frames_and_raises_the_readers_error():
    s = GridStream(torch.zeros(6, 2, 2))
    with pytest.raises(TimeoutError):
        s.wait(2, timeout=0.05)
    s.publish(3)
    s.wait(2, timeout=0.05)  # ready: returns at once
    assert s.t_complete != s.t_complete  # NaN: not complete yet
    s.publish(6)
    assert s.ready == 6 and s.t_complete == s.t_complete
    bad = GridStream(torch.zeros(4, 2, 2))
    threading.Timer(0.05, bad.fail, args=(InputError("x.dcm", "frame 3 is truncated"),)).start()
    with pytest.raises(InputError, match="x.dcm: frame 3 is truncated"):
        bad.wait(4, timeout=5)


def test_segment_starts_before_reading_ends_and_gives_the_same_labels():
    a, r, ps = 200, 150, 0.025
    truth = np.zeros((12, a, r), np.uint8)
    truth[:, :, :48] = 1
    truth[::3, : a // 2, 48:60] = 2  # differs along the pullback: context frames matter
    pb = SlowPullback(truth.astype(np.float32) / 4, "polar", ps)
    pred = oracle_predictor(batch_size=2)
    whole = pred.segment(pred.to_grid(FakePullback(pb.frames, "polar", ps)), pb)

    stream = pred.stream(pb)
    ready_at_batches: list[int] = []
    model = pred.model

    def spy(x):
        ready_at_batches.append(stream.ready)
        return model(x)

    pred.model = spy
    reader = threading.Thread(target=pred.to_grid, args=(pb,), kwargs={"out": stream})
    reader.start()
    timings: dict[str, float] = {}
    streamed = pred.segment(stream, pb, timings=timings)
    reader.join()
    assert np.array_equal(streamed, whole)
    assert (streamed == truth).mean() > 0.97
    # the first batch (frames 0-1, context up to frame 2) ran with only 4 of 12 frames decoded
    assert ready_at_batches[0] < pb.n_frames
    # every batch had its frames and the next context frame
    for i, ready in enumerate(ready_at_batches):
        assert ready >= min(pb.n_frames, 2 * i + 2 + 1)
    assert timings["wait_read_s"] > 0


def _corrupt_frames(path):
    """Damage the middle of the compressed ``frames`` member: the file opens (the header is
    intact), decoding fails part way through."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("frames.npy")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    data = bytearray(path.read_bytes())
    mid = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[mid : mid + 64] = bytes(64)
    path.write_bytes(bytes(data))


def test_a_pullback_failing_mid_read_is_recorded_and_the_others_finish(tmp_path):
    inp = tmp_path / "in"
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        p = polar_npz(inp / f"{name}.npz", 40)
        if name == "b":  # noise does not compress away: a long deflate stream to damage
            frames = (rng.random((40, 64, 48)) * 255).astype(np.uint8)
            atomic.save_npz(
                p,
                frames=frames,
                space=np.array("polar"),
                pixel_spacing_mm=np.float64(0.04),
                frame_spacing_mm=np.float64(0.2),
            )
            _corrupt_frames(p)
            opened = read_pullback(p)  # opens: the failure comes while the frames are decoded
            with pytest.raises(InputError, match="cannot decode 'frames'"):
                opened.loader(0, 4)
    res = run_inference(quiet_settings(inp, tmp_path / "out", readers=2, read_chunk=4), oracle())
    recs = res["manifest"]["pullbacks"]
    assert recs["a"]["status"] == "done" and recs["c"]["status"] == "done"
    assert recs["b"]["status"] == "failed" and recs["b"]["stage"] == "read"
    assert "b.npz" in recs["b"]["error"] and "frames" in recs["b"]["error"]
    assert not (tmp_path / "out" / "b" / "done.json").exists()
    assert res["n_failed"] == 1


def test_several_reader_threads_give_the_same_outputs(tmp_path):
    inp = tmp_path / "in"
    for i in range(5):
        polar_npz(inp / f"p{i}.npz", 3 + i, lumen_samples=10 + 3 * i)
    one = run_inference(quiet_settings(inp, tmp_path / "one", readers=1), oracle())
    three = run_inference(quiet_settings(inp, tmp_path / "three", readers=3, prefetch=1), oracle())
    assert one["manifest"]["n_done"] == three["manifest"]["n_done"] == 5
    for i in range(5):
        a = load_labels(tmp_path / "one" / f"p{i}" / "labels.npz").labels
        b = load_labels(tmp_path / "three" / f"p{i}" / "labels.npz").labels
        assert a.shape[0] == 3 + i and np.array_equal(a, b)
        assert (a[:, :, : 10 + 3 * i] == 1).mean() > 0.95
        timing = three["manifest"]["pullbacks"][f"p{i}"]["timing"]
        assert timing["read_s"] >= 0 and timing["total_s"] >= timing["segment_s"]


def test_readers_setting():
    s = InferSettings(checkpoint="c", input="i", output="o")
    assert n_readers(s, torch.device("cpu")) == 1
    assert 1 <= n_readers(s, torch.device("cuda", 0)) <= 4
    assert n_readers(InferSettings(checkpoint="c", input="i", output="o", readers=3), "cpu") == 3
    with pytest.raises(InputError, match="readers must be"):
        n_readers(InferSettings(checkpoint="c", input="i", output="o", readers=0), "cpu")


def _untimed(html: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "DATE", html)


def test_render_processes_draw_the_same_overlays_and_report(tmp_path):
    """Overlays and reports drawn in a spawned render process are byte-identical to those drawn
    in the writer thread."""
    inp = tmp_path / "in"
    for i in range(2):
        polar_npz(inp / f"p{i}.npz", 4, lumen_samples=12 + 4 * i)
    kw = dict(report=True, overlay_frames="auto")
    inline = run_inference(quiet_settings(inp, tmp_path / "a", render_processes=0, **kw), oracle())
    procs = run_inference(quiet_settings(inp, tmp_path / "b", render_processes=1, **kw), oracle())
    assert inline["manifest"]["n_done"] == procs["manifest"]["n_done"] == 2
    for i in range(2):
        a, b = tmp_path / "a" / f"p{i}", tmp_path / "b" / f"p{i}"
        pngs = sorted(p.name for p in (a / "overlays").glob("*.png"))
        assert pngs and pngs == sorted(p.name for p in (b / "overlays").glob("*.png"))
        for name in pngs:
            assert (a / "overlays" / name).read_bytes() == (b / "overlays" / name).read_bytes()
        # the report's "on YYYY-MM-DD HH:MM" may fall in two different minutes
        assert _untimed((a / "report.html").read_text()) == _untimed(
            (b / "report.html").read_text()
        )
        assert (b / "done.json").exists()


def test_a_dead_render_process_falls_back_to_threads(tmp_path, capfd):
    import os
    import signal

    from octseg.infer.pipeline import Renderer

    r = Renderer(1)
    try:
        pid = r.run(os.getpid)
        assert pid != os.getpid()  # ran in the worker
        with pytest.raises(Exception):  # noqa: B017 - the worker dies mid-task
            r.pool.submit(os.kill, pid, signal.SIGKILL).result()
        assert r.run(os.getpid) == os.getpid()  # now drawn in this process
        assert r.pool is None
        assert "render process died" in capfd.readouterr().err
    finally:
        r.close()
