"""octseg.demo: the --override and --threads options reach the training job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from octseg import demo


def test_override_option_is_passed_to_run_demo(monkeypatch, tmp_path):
    seen: dict[str, Any] = {}

    def fake_run_demo(out, **kw):
        seen.update(out=out, **kw)
        return {"failed": 0}

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    argv = ["--out", str(tmp_path), "--override", "loss.weight=[1,1,1,5,1]"]
    argv += ["--override", "trainer.max_epochs=3"]
    assert demo.main(argv) == 0
    assert seen["out"] == tmp_path
    assert list(seen["overrides"]) == ["loss.weight=[1,1,1,5,1]", "trainer.max_epochs=3"]
    assert seen["threads"] == 2


def test_threads_option_is_passed_to_run_demo(monkeypatch, tmp_path):
    seen: dict[str, Any] = {}
    monkeypatch.setattr(demo, "run_demo", lambda out, **kw: seen.update(kw) or {"failed": 0})
    assert demo.main(["--out", str(tmp_path), "--threads", "1"]) == 0
    assert seen["threads"] == 1
    with pytest.raises(SystemExit) as exc:
        demo.main(["--out", str(tmp_path), "--threads", "0"])
    assert exc.value.code == 2


def test_override_without_equals_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: pytest.fail("should not run"))
    with pytest.raises(SystemExit) as exc:
        demo.main(["--out", str(tmp_path), "--override", "loss.weight"])
    assert exc.value.code == 2


def test_train_appends_overrides_after_the_demo_defaults(monkeypatch, tmp_path):
    import octseg.jobs

    calls: list[list[str]] = []

    def fake_run(job: str, overrides: list[str]) -> None:
        calls.append(list(overrides))
        run_dir = Path(
            next(o for o in overrides if o.startswith("hydra.run.dir=")).split("=", 1)[1]
        )
        run_dir.mkdir(parents=True)
        (run_dir / "best.ckpt").write_bytes(b"x")

    monkeypatch.setattr(octseg.jobs, "run", fake_run)
    ckpt = demo._train(tmp_path, 8, 1, ["trainer.max_epochs=16", "loss.weight=[1,1,1,5,1]"])
    assert ckpt.read_bytes() == b"x"
    (ov,) = calls
    assert ov[0] == "experiment=synthetic"
    assert ov.index("trainer.max_epochs=8") < ov.index("trainer.max_epochs=16")
    assert ov[-1] == "loss.weight=[1,1,1,5,1]"


def test_demo_end_to_end_tiny(tmp_path, capsys):
    """The whole demo (cohorts, training through the training job, inference, evaluation and the
    terminal table) on the smallest settings: about 30 s on 2 cores; the only test that runs
    ``make demo``'s path end to end (a split assertion once broke it unnoticed)."""
    from octseg.demo import run_demo

    res = run_demo(
        tmp_path / "demo",
        n_heldout=1,
        epochs=1,
        threads=1,
        progress=False,
        overrides=[
            "data.generate.n=1",
            "data.generate.n_val=1",
            "model.net.channels=[4,8,16,32]",
            "data.batch_size=16",
        ],
    )
    assert res["failed"] == 0 and res["checkpoint"].is_file()
    assert len(res["reports"]) == 1 and res["evaluation_metrics.json"].is_file()
    assert (tmp_path / "demo" / "evaluation" / "verdict.csv").is_file()
    from octseg.report.evaluation import malapposed_struts_line
    from octseg.report.where import where_line

    out = capsys.readouterr().out
    line = malapposed_struts_line(res["malapposed_struts"])  # evaluate()'s own metrics
    assert f"\n{line}\n" in out
    # the held-out truth says where each frame's maximum calcium thickness lies (whether the
    # one-epoch model finds calcium there is not this test's business)
    from octseg.geometry.tables import read_csv

    truth = next((tmp_path / "demo" / "data" / "heldout").glob("*/truth/frames.csv"))
    rows = [r for r in read_csv(truth) if r["calcium_max_thickness_mm"] is not None]
    assert rows and all(r["calcium_max_thickness_angle_deg"] is not None for r in rows)
    for column, w in res["where"].items():
        assert f"\n{where_line(column, w)}\n" in out


def test_demo_training_cohort_reaches_the_held_out_malapposition():
    """The demo's held-out struts float up to 0.44 mm off the wall. With 6 training pullbacks
    (malapposition at most 0.37 mm high) the model missed the farthest on some seeds and thread
    counts; the training cohort of ``experiment=synthetic`` must draw stretches about as high
    (docs/training.md, "The demo's malapposed struts"). Parameters only: nothing is rendered."""
    import inspect

    from hydra import compose, initialize_config_dir

    from octseg.datasets.synth.anatomy import draw_pullback
    from octseg.datasets.synth.params import PRESETS, Grid

    configs = Path(demo.__file__).resolve().parent / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        gen = compose("train", overrides=["experiment=synthetic"]).data.generate
    grid = Grid(**PRESETS[gen.preset])

    def heights(seed: int, n: int) -> list[float]:
        stents = [draw_pullback(grid, seed, i).stent for i in range(n)]  # as the cohort draws
        return [s.malapposition.height_mm for s in stents if s and s.malapposition]

    n_heldout = inspect.signature(demo.run_demo).parameters["n_heldout"].default
    held_out = heights(demo.HELDOUT_SEED, n_heldout)
    trained = heights(int(gen.seed), int(gen.n))
    assert held_out and trained, (held_out, trained)
    assert max(trained) >= max(held_out) - 0.01, (trained, held_out)
