"""What the lumen contour rule and the post-processing change, measured on synthetic held-out
pullbacks whose labels carry the prediction errors of issue 13.

    .venv/bin/python benchmarks/postprocess_effect.py [--heldout DIR] [--out DIR] [--seed 0]

The true labels of a synthetic cohort (``--heldout``; generated with ``octseg synth --preset
small --seed 1000`` when missing) are corrupted frame by frame like a model's output on a
hard pullback: non-lumen specks of 1-20 pixels inside the lumen (half of the frames), a chain
of non-lumen from the wall curving into the lumen (residual blood labelled as tissue; a fifth),
a partial ring of lumen beyond the wall (a fifth), a spurious guidewire sector (a tenth), a missing
guidewire sector (a tenth), a calcium island 3 mm deep and a strut 1.5 mm in the tissue (a tenth
each). ``evaluate()`` then compares against the truth (Dice per class and per-frame measurement
agreement) for: the raw labels with the old contour rule (``fill_lumen_holes: false``), the raw
labels with the current rule, and the post-processed labels (``octseg.model.postprocess``) with
each lumen contour rule (``lumen_contour``: ``smooth``, the default, and ``first_wall``). Prints
a table and writes ``OUT/postprocess_effect.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from octseg.core.classes import BACKGROUND, CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.io.labels import LabelFile, load_labels, save_labels
from octseg.model.postprocess import postprocess_labels

ROOT = Path(__file__).resolve().parents[1]
MEASURES = {
    ("frame", "lumen_area_mm2"),
    ("frame", "lumen_min_diameter_mm"),
    ("frame", "calcium_arc_deg"),
    ("frame", "calcium_max_thickness_mm"),
    ("frame", "n_struts"),
    ("frame", "stent_area_mm2"),
    ("pullback", "mla_mm2"),
}


def corrupt(lab: np.ndarray, ps: float, rng: np.random.Generator) -> np.ndarray:
    """One polar label frame (A, R) with prediction-like errors (see the module docstring)."""
    out = lab.copy()
    a, r = lab.shape
    lum = np.isin(lab, (LUMEN, STRUT))
    edge = np.where(lum.all(1), r, np.argmin(lum, 1))  # first non-lumen sample per A-line
    cath = int(np.ceil(0.5 / ps))
    if rng.random() < 0.5:  # specks inside the lumen
        for _ in range(rng.integers(1, 6)):
            row = int(rng.integers(0, a))
            if edge[row] - cath < 6:
                continue
            col = int(rng.integers(cath, edge[row] - 3))
            hh, ww = rng.integers(1, 5, size=2)
            rows = np.arange(row, row + hh) % a
            cols = np.arange(col, min(col + ww, edge[row] - 2))
            block = np.ix_(rows, cols)
            out[block] = np.where(
                lab[block] == LUMEN, rng.choice([BACKGROUND, CALCIUM]), out[block]
            )
    if rng.random() < 0.2:
        _chain(out, lab, edge, cath, rng)
    if rng.random() < 0.2:  # a partial ring of lumen beyond the wall
        a0, span = int(rng.integers(0, a)), int(rng.integers(a // 4, a // 2))
        for i in range(span):
            row = (a0 + i) % a
            j0 = edge[row] + int(0.3 / ps)
            out[row, j0 : j0 + int(0.15 / ps)] = np.where(
                lab[row, j0 : j0 + int(0.15 / ps)] == BACKGROUND,
                LUMEN,
                out[row, j0 : j0 + int(0.15 / ps)],
            )
    gw_rows = np.nonzero((lab == GUIDEWIRE).any(1))[0]
    u = rng.random()
    if u < 0.1 and gw_rows.size:  # the guidewire sector missed: its pixels called background
        out[out == GUIDEWIRE] = BACKGROUND
    elif u < 0.2:  # a spurious guidewire sector
        a0 = int(rng.integers(0, a))
        rows = np.arange(a0, a0 + max(2, a // 40)) % a
        for row in rows:
            out[row, edge[row] :] = GUIDEWIRE
    if rng.random() < 0.1:  # a calcium island 3 mm deep
        row, col = int(rng.integers(0, a)), int(np.median(edge) + 3.0 / ps)
        if col + 3 < r:
            out[np.ix_(np.arange(row, row + 3) % a, np.arange(col, col + 3))] = CALCIUM
    if rng.random() < 0.1:  # a strut 1.5 mm in the tissue
        row = int(rng.integers(0, a))
        col = int(edge[row] + 1.5 / ps)
        if col + 2 < r:
            out[np.ix_(np.arange(row, row + 2) % a, np.arange(col, col + 2))] = STRUT
    return out


def _chain(out, lab, edge, cath, rng) -> None:
    """A chain of non-lumen 3-6 samples thick touching the wall at one end and reaching a
    random depth into the lumen over 20-60° (residual blood labelled as tissue), in place."""
    a = lab.shape[0]
    a0, span = int(rng.integers(0, a)), int(rng.integers(a // 18, a // 6))
    depth, thick = float(rng.uniform(0.3, 0.7)), int(rng.integers(3, 7))
    for i in range(span):
        row = (a0 + i) % a
        col = int(edge[row] - (edge[row] - cath) * depth * i / span)
        seg = slice(max(col - thick, cath), col)
        out[row, seg] = np.where(lab[row, seg] == LUMEN, BACKGROUND, out[row, seg])


def write(folder: Path, lf: LabelFile, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_labels(
        folder / "labels.npz",
        LabelFile(labels, lf.space, lf.pixel_spacing_mm, lf.frame_spacing_mm),
    )


def summarize(ev) -> dict:
    """Dice per class (mean over frames, pooled) and bias / 95% LoA / ICC of a few measures."""
    m = ev.metrics
    out: dict = {"dice_mean": {}, "dice_pooled": {}, "agreement": {}}
    for cls, row in ((m.get("segmentation") or {}).get("classes") or {}).items():
        if isinstance(row, dict) and isinstance(row.get("dice"), dict):
            out["dice_mean"][cls] = row["dice"]["mean"]
            out["dice_pooled"][cls] = row.get("dice_pooled")
    for r in m.get("verdict", []):
        if (r["level"], r["measurement"]) in MEASURES:
            keys = ("n", "bias", "loa_lower", "loa_upper", "icc", "mae")
            out["agreement"][f"{r['level']} {r['measurement']}"] = {k: r.get(k) for k in keys}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heldout", type=Path, default=Path("/tmp/octseg_pp_heldout"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/octseg_pp_effect"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (args.heldout / "dataset.json").is_file():
        cmd = [sys.executable, "-m", "octseg", "synth", str(args.heldout), "--n", "2"]
        subprocess.run([*cmd, "--seed", "1000", "--preset", "small", "--quiet"], check=True)
    from octseg.evaluate.pipeline import evaluate

    rng = np.random.default_rng(args.seed)
    for pb in sorted(p for p in args.heldout.iterdir() if (p / "labels.npz").is_file()):
        lf = load_labels(pb / "labels.npz")
        raw = np.stack([corrupt(f, lf.pixel_spacing_mm, rng) for f in lf.labels])
        write(args.out / "raw" / pb.name, lf, raw)
        for folder, rule in (("post", "smooth"), ("post_first_wall", "first_wall")):
            post = postprocess_labels(
                raw.copy(), lf.space, lf.pixel_spacing_mm, settings={"lumen_contour": rule}
            )
            write(args.out / folder / pb.name, lf, post)
        write(args.out / "truth_labels" / pb.name, lf, lf.labels)
    base = {"plots": False, "progress": False, "n_bootstrap": 100, "auto_source": "labels"}
    runs = {
        "truth labels": ("truth_labels", {}),
        "raw, old contour rule": ("raw", {"geometry": {"fill_lumen_holes": False}}),
        "raw, filled-lumen contour": ("raw", {}),
        "post-processed, first-wall contour": ("post_first_wall", {}),
        "post-processed (smooth contour, default)": ("post", {}),
    }
    results = {}
    for name, (folder, extra) in runs.items():
        ev = evaluate(
            args.out / folder,
            args.heldout,
            args.out / f"eval_{folder}_{len(results)}",
            {**base, **extra},
        )
        results[name] = summarize(ev)
    (args.out / "postprocess_effect.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
