"""What would a model need to see of one lesion to find it? Rebuild it alone, changed.

From a real polar block (a ``octseg.datasets.danilov.build`` folder) and the ``params.json`` of
a hybrid draw, ``build`` writes one console export per variant of the draw's lesion number
``--lesion`` (0-based, in the order of ``params.json``), each with that lesion alone inserted (no
other lesion, no stent), with truth: ``as-drawn`` and one per ``--variant NAME:FIELD=VALUE,...``
(fields of ``CalciumLesion``, e.g. ``contrast=0.35`` or ``depth_mm=0``). ``infer.py`` and
``evaluate.py`` run on them as on any console export; ``table`` reads the ``evaluate.py``
output: per variant, the frames of the lesion found and the mean calcium Dice over them.

    python benchmarks/lesion_probe.py build REAL_DIR PARAMS.json --lesion 3 \
        --variant c35:contrast=0.35 --variant shallow:depth_mm=0 --out OUT [--size 748]
    python infer.py checkpoint=CKPT input=OUT/inputs output=AUTO "overlays.frames=[]" report=false
    python evaluate.py auto=AUTO manual=OUT/manual out=EVAL settings.plots=false
    python benchmarks/lesion_probe.py table EVAL [--out R.md]
    python benchmarks/lesion_probe.py figure OUT AUTO FIG.png [--variants as-drawn c0 ...]

``figure`` shows each variant's frame with the most true calcium, cropped about it: the truth's
calcium outlined in red, the calcium ``infer.py`` found in yellow.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from octseg.core import atomic
from octseg.core.errors import InputError
from octseg.datasets.hybrid.draw import CalciumLesion
from octseg.io.labels import load_labels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strut_probe import export_variants  # noqa: E402

FIELDS = {f.name for f in fields(CalciumLesion)} - {"media"}


def lesion_of(params_json: Path, index: int) -> CalciumLesion:
    """Lesion ``index`` of a draw's ``params.json`` (a clear error for a bad index)."""
    lesions = json.loads(Path(params_json).read_text()).get("lesions") or []
    if not 0 <= index < len(lesions):
        raise InputError(params_json, f"no lesion {index} (the draw has {len(lesions)})")
    spec = {k: v for k, v in lesions[index].items() if k in FIELDS}
    return CalciumLesion(**spec)


def variant(text: str) -> tuple[str, dict[str, float]]:
    """``NAME:FIELD=VALUE,...`` -> (NAME, {FIELD: VALUE}), the fields checked."""
    name, sep, body = text.partition(":")
    changes = dict(kv.split("=", 1) for kv in body.split(",") if "=" in kv)
    bad = sorted(set(changes) - FIELDS)
    if not sep or not name or not changes or bad:
        raise argparse.ArgumentTypeError(
            f"expected NAME:FIELD=VALUE,... with fields of CalciumLesion, got {text!r}"
        )
    return name, {k: float(v) for k, v in changes.items()}


def build(
    real_dir: Path, lesion: CalciumLesion, variants: dict[str, dict], out: Path, **console
) -> list[Path]:
    """One console export per variant (``as-drawn`` first) under ``out``."""
    changed = {
        n: ([replace(lesion, **c)], None, {"probe": n, **c})
        for n, c in {"as-drawn": {}, **variants}.items()
    }
    return export_variants(real_dir, changed, out, **console)


THICK = "calcium_max_thickness_mm"


def table(eval_dir: Path) -> pd.DataFrame:
    """Per pullback: frames with the truth's calcium, how many have any found, their mean Dice;
    with ``frames_matched.csv`` beside it also the true maximum thickness and the mean
    auto - manual error of it over the frames measured on both sides (``thick_n`` of them)."""
    seg = pd.read_csv(Path(eval_dir) / "segmentation_frames.csv")
    cal = seg[(seg["class"] == "calcium") & (seg["manual_pixels"] > 0)]
    g = cal.groupby("pullback_id")
    out = pd.DataFrame(
        {
            "truth_frames": g.size(),
            "found_frames": g["auto_pixels"].apply(lambda s: int((s > 0).sum())),
            "dice_mean": g["dice"].mean().round(3),
        }
    )
    matched = Path(eval_dir) / "frames_matched.csv"
    if not matched.exists():
        return out
    fm = pd.read_csv(matched).dropna(subset=[f"auto_{THICK}", f"manual_{THICK}"])
    t = fm.assign(err=fm[f"auto_{THICK}"] - fm[f"manual_{THICK}"]).groupby("pullback_id")
    out["thick_true_mm"] = t[f"manual_{THICK}"].mean().round(3)
    out["thick_bias_mm"] = t["err"].mean().round(3)
    out["thick_n"] = t.size()
    return out.fillna({"thick_n": 0}).astype({"thick_n": int})


def _largest_frame(truth) -> int:
    from octseg.core.classes import CALCIUM

    return int(np.argmax((truth.labels == CALCIUM).sum(axis=(1, 2))))


def figure(out: Path, auto: Path, variants: list[str], path: Path, half: int = 130) -> None:
    """One panel per variant (:func:`_panel`), written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(variants), figsize=(3.2 * len(variants), 3.4), squeeze=False)
    for ax, name in zip(axes[0], variants, strict=True):
        _panel(ax, Path(out), Path(auto), name, half)
    fig.suptitle("true calcium (red), calcium infer.py found (yellow)", fontsize=9)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _panel(ax, out: Path, auto: Path, name: str, half: int) -> None:
    from PIL import Image

    from octseg.core.classes import CALCIUM

    truth = load_labels(out / "manual" / name / "labels.npz")
    f = _largest_frame(truth)
    t = truth.labels[f] == CALCIUM
    if not t.any():
        raise InputError(out / "manual" / name, "the truth has no calcium to show")
    found = load_labels(auto / name / "labels.npz")
    at = np.nonzero(found.frames == truth.frames[f])[0]
    if not len(at):
        raise InputError(auto / name, f"no label frame {int(truth.frames[f])} to show")
    a = found.labels[int(at[0])] == CALCIUM
    ys, xs = np.nonzero(t)
    cy, cx = int(ys.mean()), int(xs.mean())
    win = (slice(max(cy - half, 0), cy + half), slice(max(cx - half, 0), cx + half))
    png = np.asarray(Image.open(out / "inputs" / name / f"{int(truth.frames[f]):04d}.png"))
    ax.imshow(png[win], cmap="gray")
    ax.contour(t[win], [0.5], colors="r", linewidths=0.8)
    if a[win].any():
        ax.contour(a[win], [0.5], colors="y", linewidths=0.8)
    ax.set_title(f"{name}, frame {int(truth.frames[f])}", fontsize=8)
    ax.axis("off")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="the lesion alone, as drawn and changed, as console exports")
    b.add_argument("real_dir", type=Path)
    b.add_argument("params", type=Path)
    b.add_argument("--lesion", type=int, required=True)
    b.add_argument("--variant", type=variant, action="append", default=[])
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--size", type=int, default=768)
    b.add_argument("--colour", default="sepia", choices=("sepia", "grey"))
    t = sub.add_parser("table", help="found frames and Dice per variant from evaluate.py")
    t.add_argument("eval_dir", type=Path)
    t.add_argument("--out", type=Path)
    f = sub.add_parser("figure", help="each variant's frame with the most calcium, found and true")
    f.add_argument("out_dir", type=Path, help="the build's folder (inputs/ and manual/)")
    f.add_argument("auto", type=Path, help="infer.py on its inputs")
    f.add_argument("png", type=Path)
    f.add_argument("--variants", nargs="+", default=["as-drawn"])
    a = p.parse_args(argv)
    if a.cmd == "figure":
        figure(a.out_dir, a.auto, a.variants, a.png)
        return 0
    if a.cmd == "build":
        les = lesion_of(a.params, a.lesion)
        made = build(a.real_dir, les, dict(a.variant), a.out, size=a.size, colour=a.colour)
        print("\n".join(str(m) for m in made))
        return 0
    md = table(a.eval_dir).to_string()
    print(md)
    if a.out:
        a.out.write_text(md + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
