"""Inference throughput: model only (tensors in memory) vs end to end (files in, every output written).

    .venv/bin/python benchmarks/inference.py                       # default model, 270-frame pullback
    .venv/bin/python benchmarks/inference.py --checkpoint runs/.../best.pt --input pullback.dcm
    .venv/bin/python benchmarks/inference.py --checkpoint CKPT --input frames/ \
        --pixel-spacing-mm 0.01 --frame-spacing-mm 0.2        # a folder of PNG frames
    .venv/bin/python benchmarks/inference.py --device cuda --amp fp16 --channels-last --batch-size 64

Both figures use the same frames and the same predictor:

* **model only**: the pullback already resampled onto the net grid and held in memory; the
  network (with TTA if asked) runs over every frame in batches - what the model can do at best;
* **end to end**: ``run_inference`` on the files: reading, resampling, the model, mapping back to
  the input space, geometry, labels / tables / overlays / HTML report, done markers.

**Simulated accelerator** (``--simulate-device model 1000 0``, no GPU needed): on a CPU-only machine
the model and the rest of the pipeline share the same cores, so the end-to-end/model-only ratio says
more about the core count than about the pipeline. A stand-in predictor then replays the real
network's outputs (computed beforehand for every batch) and, per batch, waits ``batch / FPS``
seconds without using the CPU, as the host thread does while a GPU computes. ``model`` means the
model-only figure just measured, ``0`` no wait at all (how fast the host side alone can go). The
ratio is then end to end / FPS: whether reading, mapping back, geometry and writing keep a device of
that speed busy on this machine's cores. It is a model of a GPU run, not a GPU measurement.

Without ``--checkpoint`` a randomly initialised network of the default architecture
(configs/model/unet.yaml, default net grid) is used: speed does not depend on the weights, but the
geometry then works on noise-like masks, which is slower than on real ones. Without ``--input`` a
synthetic polar pullback of ``--frames`` frames (504 A-lines x 480 samples, 10 um) is written
(``--pullbacks`` copies, to show reading/writing overlapping the model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from octseg.model.predictor import PredictOptions, Predictor, _argmax_channels


def synthetic_frames(frames: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 polar frames (504 A-lines x 480 samples): a lumen, a bright wall decaying with depth
    and speckle (also used by benchmarks/render.py)."""
    a, r = 504, 480
    depth = np.arange(r)[None, :]
    out = np.empty((frames, a, r), np.uint8)
    for f in range(frames):
        radius = 150 + 40 * np.sin(np.linspace(0, 2 * np.pi, a) + f / 30.0)[:, None]
        wall = np.where(depth > radius, 200 * np.exp(-(depth - radius) / 120.0), 8)
        out[f] = np.clip(wall * rng.gamma(4.0, 0.25, (a, r)), 0, 255).astype(np.uint8)
    return out


def _synthetic_input(folder: Path, frames: int, copies: int, seed: int = 0) -> Path:
    """``copies`` polar pullbacks of :func:`synthetic_frames` as octseg image npz files."""
    from octseg.core import atomic

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(copies):
        atomic.save_npz(
            folder / f"bench{c}.npz",
            frames=synthetic_frames(frames, rng),
            space=np.array("polar"),
            pixel_spacing_mm=np.float64(0.01),
            frame_spacing_mm=np.float64(0.2),
        )
    return folder


class ReplayPredictor(Predictor):
    """Accelerator stand-in: the network's outputs for every batch, computed beforehand
    (:meth:`record`), come back as one-hot probabilities after ``batch / device_fps`` seconds
    of sleeping (no CPU used, like a host thread waiting for a GPU)."""

    device_fps: float = 0.0

    @staticmethod
    def _key(x: torch.Tensor) -> tuple:
        x = x.double()
        return (
            tuple(x.shape),
            round(float(x.sum()), 4),
            round(float(x[..., ::5, ::7].sum()), 4),
        )

    def record(self, grid: torch.Tensor) -> None:
        store = self.__dict__.setdefault("_replay", {})
        for start in range(0, grid.shape[0], self.batch_size):
            x = self.network_inputs(grid, start, min(grid.shape[0], start + self.batch_size))
            store[self._key(x)] = _argmax_channels(super().probabilities(x)).to(torch.uint8)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        try:
            lab = self._replay[self._key(x)]
        except KeyError:
            raise RuntimeError("replay: a batch that was not recorded") from None
        if self.device_fps > 0:
            time.sleep(x.shape[0] / self.device_fps)
        oh = torch.nn.functional.one_hot(lab.long(), len(self.classes))
        return oh.permute(0, 3, 1, 2).float()


def _run_e2e(predictor, settings_kw: dict, inp: Path, out: Path) -> tuple[dict, float, dict]:
    """One end-to-end run into a fresh ``out``: (result, seconds, stage seconds summed)."""
    from octseg.infer.pipeline import InferSettings, run_inference

    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    res = run_inference(InferSettings(input=str(inp), output=str(out), **settings_kw), predictor)
    e2e_s = time.perf_counter() - t0
    stage: dict[str, float] = {}
    for rec in res["manifest"]["pullbacks"].values():
        for k, v in (rec.get("timing") or {}).items():
            stage[k] = stage.get(k, 0.0) + v
    return res, e2e_s, stage


def main(argv: list[str] | None = None) -> int:
    from octseg.infer.inputs import discover
    from octseg.io import read_pullback
    from octseg.model.predictor import save_untrained_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument(
        "--input",
        type=Path,
        default=None,
        help="a pullback (file or folder of frames) or anything infer.py takes (default: synthetic)",
    )
    ap.add_argument("--pixel-spacing-mm", type=float, default=None)
    ap.add_argument("--frame-spacing-mm", type=float, default=None)
    ap.add_argument("--frames", type=int, default=270)
    ap.add_argument(
        "--pullbacks", type=int, default=1, help="synthetic copies for the end-to-end run"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--tta", action="store_true", help="TTA: 4 rolls x flip (8 passes)")
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--readers", default="auto")
    ap.add_argument("--render-processes", default="auto")
    ap.add_argument(
        "--simulate-device",
        nargs="*",
        default=[],
        metavar="FPS",
        help="also run with an accelerator stand-in of these speeds (frames/s; 'model': the "
        "model-only figure measured; 0: no wait) - see the module docstring",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--label", default=None, help="with --json: store the result under this key (merged)"
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the end-to-end outputs here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="octseg-bench-"))
    try:
        ckpt = args.checkpoint or save_untrained_checkpoint(work / "untrained-unet.pt")
        inp = args.input or _synthetic_input(work / "in", args.frames, args.pullbacks)
        kw = dict(
            device=args.device,
            batch_size=args.batch_size,
            amp=args.amp,
            channels_last=args.channels_last,
            compile=args.compile,
            tta_rolls=4 if args.tta else 1,
            tta_flip=args.tta,
        )
        predictor = Predictor.from_checkpoint(ckpt, PredictOptions(**kw))
        spacing = dict(
            pixel_spacing_mm=args.pixel_spacing_mm, frame_spacing_mm=args.frame_spacing_mm
        )
        pb = read_pullback(discover(inp)[0].path, **spacing)
        grid = predictor.to_grid(pb)
        predictor.model_only(grid[: min(len(grid), 2 * predictor.batch_size)])  # warm-up
        t0 = time.perf_counter()
        n = predictor.model_only(grid)
        model_s = time.perf_counter() - t0
        model_fps = n / model_s

        out = args.keep or (work / "out")
        pass_on = (
            "device",
            "batch_size",
            "amp",
            "channels_last",
            "compile",
            "tta_rolls",
            "tta_flip",
        )
        settings_kw = dict(
            checkpoint=str(ckpt),
            writers=args.writers,
            readers=args.readers,
            render_processes=args.render_processes,
            progress=False,
            tta_enabled=bool(args.tta),  # the settings (fingerprint) say what the predictor does
            **spacing,
            **{k: v for k, v in kw.items() if k in pass_on},
        )
        res, e2e_s, stage = _run_e2e(predictor, settings_kw, inp, out)
        frames = res["frames"]
        e2e_fps = frames / e2e_s
        per_pb = res["manifest"]["pullbacks"]
        result = {
            "device": str(predictor.device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "input": str(
                inp
                if args.input
                else f"synthetic {args.pullbacks} x {args.frames} frames, polar 504x480"
            ),
            "checkpoint": str(
                args.checkpoint or "untrained default UNet (configs/model/unet.yaml)"
            ),
            "net_grid": predictor.net_grid,
            "batch_size": predictor.batch_size,
            "amp": str(predictor.amp),
            "channels_last": predictor.channels_last,
            "compile": args.compile,
            "readers": args.readers,
            "render_processes": args.render_processes,
            "writers": args.writers,
            "tta_passes": len(predictor.tta),
            "model_only_frames_per_s": round(model_fps, 2),
            "end_to_end_frames": frames,
            "end_to_end_s": round(e2e_s, 2),
            "end_to_end_frames_per_s": round(e2e_fps, 2),
            "ratio": round(e2e_fps / model_fps, 3),
            "seconds_per_270_frames": round(270 / e2e_fps, 1),
            "stage_seconds_summed": {k: round(v, 2) for k, v in stage.items()},
            "failed": res["n_failed"],
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        }
        if args.simulate_device:
            replay = ReplayPredictor.from_checkpoint(ckpt, PredictOptions(**kw))
            for task in discover(inp):  # the real network's outputs for every batch, once
                replay.record(replay.to_grid(read_pullback(task.path, **spacing)))
            sims = []
            for want in args.simulate_device:
                fps = model_fps if want == "model" else float(want)
                replay.device_fps = fps
                r, sec, st = _run_e2e(replay, settings_kw, inp, work / "sim")
                sim_fps = r["frames"] / sec
                sims.append(
                    {
                        "device_frames_per_s": round(fps, 2) if fps > 0 else "no wait",
                        "end_to_end_s": round(sec, 2),
                        "end_to_end_frames_per_s": round(sim_fps, 2),
                        "ratio": round(sim_fps / fps, 3) if fps > 0 else None,
                        "wait_read_s": round(st.get("wait_read_s", 0.0), 2),
                        "failed": r["n_failed"],
                    }
                )
            result["simulated_device"] = sims
        print(json.dumps(result, indent=2))
        n_pb = max(1, len(per_pb))
        print(f"stage seconds (summed over {n_pb} pullback(s); writer stages overlap the model):")
        for k, v in stage.items():
            print(f"  {k[:-2] if k.endswith('_s') else k:<18} {v:7.2f}")
        print(
            f"model only {model_fps:.1f} frames/s | end to end {e2e_fps:.1f} frames/s "
            f"({100 * e2e_fps / model_fps:.0f}% of model only; target >= 80%) | "
            f"270 frames in {270 / e2e_fps:.1f} s on {predictor.device}"
        )
        for sim in result.get("simulated_device", []):
            dev = sim["device_frames_per_s"]
            print(
                f"simulated device at {dev} frames/s: end to end "
                f"{sim['end_to_end_frames_per_s']:.1f} frames/s"
                + (f" ({100 * sim['ratio']:.0f}% of the device)" if sim["ratio"] else "")
            )
        if args.json:
            out_obj: dict = result
            if args.label:
                old = json.loads(args.json.read_text()) if args.json.is_file() else {}
                out_obj = {**old, args.label: result}
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out_obj, indent=2) + "\n")
        return 0 if not res["n_failed"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
