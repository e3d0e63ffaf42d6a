"""What the model calls the expert's lumen, per corruption of the robustness suite.

``benchmarks/robustness.py`` reports how far the lumen area is off; this says what took its
place: for each run and corruption, the share of the expert's lumen pixels (the suite's
``manual/<corruption>/labels.npz``) that the run's ``infer/<corruption>/labels.npz`` labels
lumen, background, calcium, strut or guidewire (product outputs, read with
:func:`octseg.io.labels.load_labels`; a label map of another shape is an error naming it).

    python benchmarks/lumen_class_share.py --manual W/suite/manual \\
        cw=W/infer plain=W2/infer --corruptions blood-2 hard-2 none --out share.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from octseg.core.classes import CLASS_NAMES
from octseg.core.errors import InputError
from octseg.io.labels import load_labels

SHOWN = (1, 0, 2, 3, 4)  # lumen, background, calcium, strut, guidewire


def shares(auto: np.ndarray, manual: np.ndarray, source: Path) -> dict[str, float]:
    """Share of ``manual``'s lumen pixels that ``auto`` gives each class of :data:`SHOWN`."""
    if auto.shape != manual.shape:
        raise InputError(source, f"label map {auto.shape} differs from the expert's {manual.shape}")
    lumen = manual == 1
    if not lumen.any():
        raise InputError(source, "the expert's labels hold no lumen")
    return {CLASS_NAMES[c]: float((auto[lumen] == c).mean()) for c in SHOWN}


def table(manual: Path, runs: dict[str, Path], corruptions: list[str]) -> pd.DataFrame:
    """One row per run and corruption: the shares of :func:`shares`."""
    expert = {c: load_labels(manual / c / "labels.npz").labels for c in corruptions}
    rows = []
    for name, infer in runs.items():
        for corruption in corruptions:
            path = infer / corruption / "labels.npz"
            got = shares(load_labels(path).labels, expert[corruption], path)
            rows.append({"run": name, "corruption": corruption, **got})
    return pd.DataFrame(rows)


def _run(arg: str) -> tuple[str, Path]:
    name, sep, path = arg.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{arg!r}: give NAME=WORK/infer")
    return name, Path(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=_run, metavar="NAME=INFER_DIR")
    p.add_argument("--manual", type=Path, required=True, help="the suite's manual/ folder")
    p.add_argument("--corruptions", nargs="+", default=["blood-2", "hard-2", "none"])
    p.add_argument("--out", type=Path, help="markdown table (also printed)")
    a = p.parse_args(argv)
    md = table(a.manual, dict(a.runs), a.corruptions).to_markdown(index=False, floatfmt=".4f")
    print(md)
    if a.out:
        a.out.write_text(md + "\n")


if __name__ == "__main__":
    main()
