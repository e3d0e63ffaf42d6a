"""End-to-end runs on a tiny cohort: two epochs, exact resume, DDP with 2 CPU processes."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_group
from hydra import compose, initialize_config_dir
from torch import nn

from octseg.datasets.toy import make_toy_dataset
from octseg.model.checkpoint import load_checkpoint
from octseg.train.engine import Engine
from octseg.train.loop import train

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "octseg" / "configs"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "ds", n_pullbacks=3, n_frames=6)


def _cfg(root: Path, out: Path, *extra: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            "train",
            overrides=["experiment=tiny", f"data.root={root}", f"paths.output_dir={out}", *extra],
        )


def test_two_epoch_run_writes_run_folder(toy_root, tmp_path):
    out = tmp_path / "run"
    summary = train(
        _cfg(toy_root, out, "logger=tensorboard", "logger.tensorboard.image_every_n_epochs=1")
    )
    assert summary["epochs_run"] == 2
    split = json.loads((out / "split.json").read_text())
    assert split["val"] and split["train"] and not set(split["train"]) & set(split["val"])
    assert sorted(split["train"] + split["val"]) == ["pb000", "pb001", "pb002"]
    assert (out / "config.yaml").is_file() and "context_frames: 3" in (
        out / "config.yaml"
    ).read_text()
    hist = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(h["frames_per_s"] > 0 for h in hist) and "val/dice_lumen" in hist[-1]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("last.ckpt", "best.ckpt"):
        obj = torch.load(out / name, weights_only=True)
        assert obj["train_state"]["epoch"] in (1, 2)
        model, meta = load_checkpoint(out / name)
        assert meta["classes"] == [0, 1, 2, 3, 4] and meta["context_frames"] == 3
        assert meta["net_grid"] == {"n_alines": 32, "n_samples": 32, "spacing_mm": 0.08}
        assert meta["normalization"]["kind"] == "zscore" and meta["split"] == split
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5, 32, 32)


@pytest.mark.parametrize("ema", [None, 0.9], ids=["weights", "ema"])
def test_resume_equals_uninterrupted(toy_root, tmp_path, ema):
    decay = "null" if ema is None else ema
    common = (
        "trainer.deterministic=true",
        "data.augment.enabled=true",
        f"trainer.ema_decay={decay}",
    )
    full = tmp_path / "full"
    train(_cfg(toy_root, full, *common))
    part = tmp_path / "part"
    train(_cfg(toy_root, part, *common, "trainer.interrupt_after_epoch=1"))
    assert torch.load(part / "last.ckpt", weights_only=True)["train_state"]["epoch"] == 1
    resumed = tmp_path / "resumed"
    train(_cfg(toy_root, resumed, *common, f"ckpt_path={part / 'last.ckpt'}"))
    a = torch.load(full / "last.ckpt", weights_only=True)
    b = torch.load(resumed / "last.ckpt", weights_only=True)
    assert b["train_state"]["epoch"] == 2
    for key, val in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], val, rtol=0, atol=0, msg=key)
    assert (
        a["train_state"]["history"][-1]["train_loss"]
        == b["train_state"]["history"][-1]["train_loss"]
    )
    if ema is not None:  # the average and the trained weights both resume exactly
        assert b["train_state"]["ema_n_averaged"] == a["train_state"]["ema_n_averaged"]
        for key, val in a["train_state"]["raw_state_dict"].items():
            raw = b["train_state"]["raw_state_dict"][key]
            torch.testing.assert_close(raw, val, rtol=0, atol=0, msg=key)


def _engine(decay: float | None) -> Engine:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    eng = Engine(net, net, {}, {}, nn.Identity(), nn.Identity(), False, opt, None, scaler, "32",
                 torch.device("cpu"))  # fmt: skip
    eng.attach_ema(decay)
    return eng


def test_ema_is_the_moving_average_of_weights_and_batchnorm_statistics():
    eng = _engine(0.75)
    w0 = {k: v.clone() for k, v in eng.model.state_dict().items()}
    assert eng.eval_model is eng.ema.module
    eng.model.train()
    eng.step(eng.model(torch.randn(8, 3)).square().mean(), clip=None)
    w1 = eng.model.state_dict()
    avg = eng.ema.module.state_dict()
    for k in ("0.weight", "0.bias", "1.running_mean", "1.running_var"):
        assert not torch.equal(w1[k], w0[k]), k  # the step moved it
        torch.testing.assert_close(avg[k], 0.75 * w0[k] + 0.25 * w1[k], rtol=1e-6, atol=1e-7)
    assert int(eng.ema.n_averaged) == 2  # the copy at the start, one step


def test_without_ema_the_trained_weights_are_validated_and_saved():
    eng = _engine(None)
    assert eng.ema is None and eng.eval_model is eng.model
    with pytest.raises(ValueError, match="ema_decay"):
        eng.attach_ema(1.0)


def test_ema_run_saves_the_average_and_validates_it(toy_root, tmp_path):
    out = tmp_path / "run"
    train(_cfg(toy_root, out, "trainer.ema_decay=0.5", "trainer.max_epochs=1"))
    ck = torch.load(out / "last.ckpt", weights_only=True)
    ts = ck["train_state"]
    assert ts["ema_n_averaged"] == ts["global_step"] + 1
    differ = [k for k, v in ck["state_dict"].items() if not torch.equal(v, ts["raw_state_dict"][k])]
    assert differ  # the checkpoint's weights are the average, not the trained weights
    model, meta = load_checkpoint(out / "last.ckpt")  # what inference loads: the average
    torch.testing.assert_close(model.state_dict()[differ[0]], ck["state_dict"][differ[0]])


def test_sparse_labels_train(tmp_path):
    root = make_toy_dataset(tmp_path / "sparse", n_pullbacks=2, n_frames=9, sparse_every=4)
    out = tmp_path / "run"
    summary = train(_cfg(root, out, "trainer.max_epochs=1", "data.batch_size=1"))
    assert summary["epochs_run"] == 1
    assert summary["last_val"]["n_lumen"] == 3  # the 3 labelled frames of the val pullback


def test_lumen_only_classes(toy_root, tmp_path):
    out = tmp_path / "run"
    train(_cfg(toy_root, out, "data=lumen_only", "trainer.max_epochs=1"))
    _, meta = load_checkpoint(out / "last.ckpt")
    assert meta["classes"] == [0, 1, 4] and meta["model"]["out_channels"] == 3


def _torchrun_tiny(toy_root, tmp_path, *overrides):
    """train.py experiment=tiny under torchrun with two CPU processes; its logs under tmp_path."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(ROOT / "train.py"), "experiment=tiny", f"data.root={toy_root}"]
    cmd += [f"paths.log_dir={tmp_path / 'logs'}", *overrides]
    return run_group(cmd, cwd=tmp_path, env=env, timeout=240)


def test_ddp_two_processes_gloo(toy_root, tmp_path):
    res = _torchrun_tiny(toy_root, tmp_path, "trainer.ddp_backend=gloo")
    assert res.returncode == 0, res.stderr[-3000:]
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1, runs  # one run folder for both ranks
    run = runs[0]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "last.ckpt").is_file()
    ckpt = torch.load(run / "last.ckpt", weights_only=True)
    rngs = ckpt["train_state"]["rng_per_rank"]  # each rank's RNG state, for an exact resume
    assert len(rngs) == 2 and all(set(r) >= {"torch", "numpy", "python"} for r in rngs)
    load_checkpoint(run / "last.ckpt")


@pytest.mark.skipif(
    torch.distributed.is_nccl_available() and torch.cuda.is_available(),
    reason="needs a machine where NCCL cannot work (the override must then fail)",
)
def test_ddp_backend_override_is_used_under_torchrun(toy_root, tmp_path):
    """trainer.ddp_backend is honoured: nccl without CUDA must fail to create the group (the run
    stamp used to create it first with the default backend, silently ignoring the setting)."""
    res = _torchrun_tiny(toy_root, tmp_path, "trainer.ddp_backend=nccl", "trainer.max_epochs=1")
    assert res.returncode != 0
    assert "nccl" in (res.stdout + res.stderr).lower()
    assert not list((tmp_path / "logs").rglob("train_summary.json"))


def test_early_stopping_uses_its_own_mode(toy_root, tmp_path):
    from octseg.train.settings import early_stopping_settings

    cfg = _cfg(
        toy_root,
        tmp_path,
        "callbacks.early_stopping.mode=min",
        "callbacks.early_stopping.monitor=val/loss",
    )
    es = early_stopping_settings(cfg, "score", "max")
    assert es["mode"] == "min" and es["monitor"] == "val/loss"
    assert early_stopping_settings(_cfg(toy_root, tmp_path), "score", "max")["mode"] == "max"
    # end to end: the validation loss falls on this cohort, so with mode=min the run must not
    # stop early (with the checkpoint's mode=max every falling loss counted as "no improvement"
    # and patience 2 stopped it after epoch 3)
    out = tmp_path / "run"
    summary = train(
        _cfg(
            toy_root,
            out,
            "callbacks.early_stopping.mode=min",
            "callbacks.early_stopping.monitor=val/loss",
            "callbacks.early_stopping.patience=2",
            "trainer.max_epochs=3",
        )
    )
    losses = [h["val/loss"] for h in json.loads((out / "metrics.json").read_text())]
    assert losses[1] < losses[0] and losses[2] < losses[0]
    assert not summary["stopped_early"] and summary["epochs_run"] == 3


def test_validation_scores_the_average_and_init_from_starts_it(toy_root, tmp_path):
    """Validation runs the average, not the trained weights; a fine-tuning run's average starts
    at the init_from weights (attached after they are loaded)."""
    from octseg.core.distributed import DistInfo
    from octseg.train.loop import _prepare, train_epoch, validate, validate_epoch

    base = tmp_path / "base"
    train(_cfg(toy_root, base, "trainer.max_epochs=1"))
    start = torch.load(base / "last.ckpt", weights_only=True)["state_dict"]
    out = tmp_path / "run"
    cfg = _cfg(toy_root, out, "trainer.ema_decay=0.5", f"init_from={base / 'last.ckpt'}")
    run = _prepare(cfg, DistInfo())
    for k, v in run.engine.ema.module.state_dict().items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=0, msg=k)
    record = train_epoch(run, 0)
    validate_epoch(run, 1, record)
    eng, args = run.engine, (run.data.val_loader, run.metrics, run.engine.base_loss, DistInfo())
    on_avg, _ = validate(eng.ema.module, *args, eng.autocast)
    on_raw, _ = validate(eng.model, *args, eng.autocast)
    assert on_avg["loss"] != on_raw["loss"]  # the two really differ after a step
    assert record["val/loss"] == pytest.approx(on_avg["loss"], rel=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_mixed_precision_run_resumes_and_loads_on_cpu(toy_root, tmp_path):
    """trainer=gpu (automatic mixed precision): two epochs, then a third resumed from the
    checkpoint (the first two epochs' records carried over, not retrained); the checkpoint loads
    weights-only on the CPU, and the network predicts the same there as on the GPU (fp32
    evaluation; 1e-3 for the two devices' convolution kernels)."""
    out = tmp_path / "run"
    assert train(_cfg(toy_root, out, "trainer=gpu"))["epochs_run"] == 2
    hist = json.loads((out / "metrics.json").read_text())
    assert all(math.isfinite(h["train_loss"]) for h in hist)
    train(
        _cfg(toy_root, out, "trainer=gpu", "trainer.max_epochs=3", f"ckpt_path={out / 'last.ckpt'}")
    )
    resumed = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in resumed] == [1, 2, 3] and resumed[:2] == hist
    model, _ = load_checkpoint(out / "last.ckpt")  # weights_only=True, mapped to CPU
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        cpu = model.eval()(x)
        gpu = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-3, rtol=1e-3)
