"""Peak memory of writing the DICOM-SEG of a large IVOCT pullback (what ``infer.py`` does for a
DICOM input after segmenting it).

Writes a multi-frame IVOCT DICOM of about ``--size-mb`` MB (``benchmarks/dicom_memory.py``'s
streamed writer), builds label maps ``(F, H, W)`` uint8 with the four classes (a lumen disk,
a calcium arc, struts, a guidewire), then, in a fresh process, reports the resident set size
before ``write_dicom_seg`` (the interpreter, the imports and the label maps, which inference
holds anyway) and the peak during it (``ru_maxrss``), so the SEG's own cost is the difference.

    .venv/bin/python benchmarks/dicomseg_memory.py --size-mb 300 --in-memory
    .venv/bin/python benchmarks/dicomseg_memory.py --size-mb 300 --space polar --height 504 \\
        --width 968
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dicom_memory import write_large  # noqa: E402


def make_labels(n: int, h: int, w: int) -> np.ndarray:
    """Plausible label maps: lumen disk (1), a calcium arc behind it (2), eight struts on the
    lumen border (3) and a guidewire spot (4); the disk breathes a little along the pullback."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r = np.hypot(yy - cy, xx - cx)
    ang = np.arctan2(yy - cy, xx - cx)
    out = np.empty((n, h, w), np.uint8)
    r0 = 0.3 * min(h, w)
    for i in range(n):
        rl = r0 * (1 + 0.1 * np.sin(i / 15))
        lab = np.zeros((h, w), np.uint8)
        lab[r < rl] = 1
        lab[(r > rl + 5) & (r < rl + 40) & (np.abs(ang - i / 50) < 1.0)] = 2
        for k in range(8):
            a = 2 * np.pi * k / 8 + i / 30
            lab[np.hypot(yy - cy - rl * np.sin(a), xx - cx - rl * np.cos(a)) < 4] = 3
        lab[np.hypot(yy - cy - 20, xx - cx - 20) < 6] = 4
        out[i] = lab
    return out


def measure(path: str, streamed: bool = True) -> dict:
    import resource

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

    def current_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    import highdicom  # noqa: F401  (imports before the baseline)
    import pydicom

    from octseg.io.dicomseg import write_dicom_seg

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    labels = make_labels(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    base = current_mb()
    peak_before = rss_mb()
    t0 = time.perf_counter()
    out = Path(path).with_name("seg.dcm")
    write_dicom_seg(out, labels, path, **({} if streamed else {"streamed": False}))
    return {
        "mode": "streamed" if streamed else "highdicom in memory",
        "frames": labels.shape[0],
        "frame_shape": list(labels.shape[1:]),
        "labels_mb": round(labels.nbytes / 2**20, 1),
        "rss_before_seg_mb": round(base, 1),
        "peak_rss_before_seg_mb": round(peak_before, 1),
        "peak_rss_mb": round(rss_mb(), 1),
        "seg_extra_mb": round(rss_mb() - max(base, peak_before), 1),
        "seg_file_mb": round(out.stat().st_size / 2**20, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=300.0)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--space", choices=("cartesian", "polar"), default="cartesian")
    ap.add_argument("--keep", type=Path, help="write the DICOM here and keep it")
    ap.add_argument(
        "--in-memory", action="store_true", help="also measure write_dicom_seg(streamed=False)"
    )
    ap.add_argument("--_measure", nargs=2, metavar=("PATH", "STREAMED"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._measure:
        print(json.dumps(measure(a._measure[0], a._measure[1] == "1")))
        return
    n = max(1, int(a.size_mb * 2**20 / (a.height * a.width)))
    tmpdir = tempfile.TemporaryDirectory(prefix="octseg-seg-bench-")
    path = a.keep or Path(tmpdir.name) / "large.dcm"
    write_large(path, n, a.height, a.width, a.space)
    size_mb = os.path.getsize(path) / 2**20
    print(f"wrote {path}: {n} frames of {a.height}x{a.width} uint8, {size_mb:.0f} MB")
    for streamed in ("1", "0") if a.in_memory else ("1",):
        out = subprocess.run(
            [sys.executable, __file__, "--_measure", str(path), streamed],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["file_mb"] = round(size_mb, 1)
        print(json.dumps(res), flush=True)
    tmpdir.cleanup()


if __name__ == "__main__":
    main()
