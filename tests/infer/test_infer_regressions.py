"""Regressions from review: resume identity of the input, pending manifest entries, device per
rank, anonymised ids, net-grid padding going back to a deeper native grid."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch
from model_helpers import oracle_predictor, polar_npz, quiet_settings

from octseg.infer.pipeline import run_inference
from octseg.model.predictor import Predictor, pick_device

GRID = {"n_alines": 64, "n_samples": 48, "spacing_mm": 0.04}


def oracle(**kw) -> Predictor:
    return oracle_predictor(GRID, context_frames=1, **kw)


def test_resume_redoes_another_input_under_the_same_id(tmp_path):
    out = tmp_path / "out"
    a = polar_npz(tmp_path / "a" / "case.npz", 3)
    b = polar_npz(tmp_path / "b" / "case.npz", 5)
    r1 = run_inference(quiet_settings(a, out), oracle())
    assert r1["manifest"]["pullbacks"]["case"]["n_frames"] == 3
    # the same input again: skipped
    r2 = run_inference(quiet_settings(a, out), oracle())
    assert r2["manifest"]["pullbacks"]["case"]["skipped"] is True
    # another file with the same stem into the same output: must be redone, not "done"
    r3 = run_inference(quiet_settings(b, out), oracle())
    rec = r3["manifest"]["pullbacks"]["case"]
    assert rec["skipped"] is False and rec["n_frames"] == 5
    done = json.loads((out / "case" / "done.json").read_text())
    assert done["input"]["path"] == str(b.resolve()) and done["input"]["size"] == b.stat().st_size
    # the same path rewritten with other content (size / mtime change): redone as well
    polar_npz(b, 4)
    r4 = run_inference(quiet_settings(b, out), oracle())
    assert r4["manifest"]["pullbacks"]["case"]["n_frames"] == 4


def test_manifest_calls_unprocessed_pullbacks_pending_during_the_run(tmp_path, monkeypatch):
    from octseg.infer import manifest as mf

    inp = tmp_path / "in"
    for name in ("p1", "p2", "p3"):
        polar_npz(inp / f"{name}.npz", 2)
    seen: list[dict] = []
    merge = mf.merge_manifests

    def spy(*args, **kwargs):
        m = merge(*args, **kwargs)
        seen.append(json.loads((tmp_path / "out" / "manifest.json").read_text()))
        return m

    monkeypatch.setattr(mf, "merge_manifests", spy)
    res = run_inference(quiet_settings(inp, tmp_path / "out"), oracle())
    assert res["manifest"]["n_done"] == 3 and res["manifest"]["n_failed"] == 0
    assert len(seen) == 4  # after each pullback, then the final merge
    first = seen[0]["pullbacks"]
    assert [first[p]["status"] for p in ("p1", "p2", "p3")] == ["done", "pending", "pending"]
    assert seen[0]["n_failed"] == 0 and seen[0]["n_pending"] == 2
    assert not any(r["status"] == "failed" for m in seen for r in m["pullbacks"].values())


def test_pick_device_puts_each_rank_on_its_own_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert pick_device("cuda") == torch.device("cuda", 3)
    assert pick_device("auto") == torch.device("cuda", 3)
    assert pick_device("cuda:1") == torch.device("cuda", 1)  # an explicit index is kept
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert pick_device("cuda") == torch.device("cuda")  # single process: unchanged


def test_anonymize_ids_keeps_names_out_of_the_outputs(tmp_path):
    inp = tmp_path / "PACS_EXPORT"
    polar_npz(inp / "DOE_JOHN_19600101.npz", 2)
    polar_npz(inp / "ROE_JANE_19700202.npz", 3)
    (inp / "SMITH_ANN_19800303.npz").write_bytes(b"corrupt")
    out = tmp_path / "out"
    res = run_inference(quiet_settings(inp, out, anonymize_ids=True, report=True), oracle())
    man = res["manifest"]
    assert sorted(man["pullbacks"]) == ["pullback-0001", "pullback-0002", "pullback-0003"]
    assert man["n_failed"] == 1 and man["pullbacks"]["pullback-0003"]["status"] == "failed"
    with open(out / "ids_private.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["source"]).name for r in rows] == [
        "DOE_JOHN_19600101.npz",
        "ROE_JANE_19700202.npz",
        "SMITH_ANN_19800303.npz",
    ]
    leaks = []
    for p in out.rglob("*"):
        if p.is_file() and p.name != "ids_private.csv":
            text = p.read_bytes().decode("latin-1")
            for needle in ("DOE_JOHN", "ROE_JANE", "SMITH_ANN", "PACS_EXPORT", str(tmp_path)):
                if needle in text or needle in str(p.relative_to(out)):
                    leaks.append((p.relative_to(out), needle))
    assert not leaks
    # resume works with anonymised ids
    again = run_inference(quiet_settings(inp, out, anonymize_ids=True, report=True), oracle())
    assert again["manifest"]["n_skipped"] == 2


def test_ranks_come_from_slurm_under_submitit(monkeypatch):
    """Sharded inference as a SLURM job array of tasks (hydra-submitit-launcher): each task
    derives its rank from SLURM's variables, as torchrun would set them."""
    from octseg.infer.pipeline import dist_env

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "unset")  # recorded, so monkeypatch removes what export adds
        monkeypatch.delenv(key)
    slurm = {
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "42",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "0",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_NODELIST": "node1",
    }
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    assert dist_env() == (1, 2, 1)
    assert os.environ["MASTER_ADDR"] == "node1" and os.environ["MASTER_PORT"]
