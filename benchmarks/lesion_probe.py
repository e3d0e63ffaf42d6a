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
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from octseg.core.errors import InputError
from octseg.datasets.hybrid.draw import CalciumLesion

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


def table(eval_dir: Path) -> pd.DataFrame:
    """Per pullback: frames with the truth's calcium, how many have any found, their mean Dice."""
    seg = pd.read_csv(Path(eval_dir) / "segmentation_frames.csv")
    cal = seg[(seg["class"] == "calcium") & (seg["manual_pixels"] > 0)]
    g = cal.groupby("pullback_id")
    return pd.DataFrame(
        {
            "truth_frames": g.size(),
            "found_frames": g["auto_pixels"].apply(lambda s: int((s > 0).sum())),
            "dice_mean": g["dice"].mean().round(3),
        }
    )


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
    a = p.parse_args(argv)
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
