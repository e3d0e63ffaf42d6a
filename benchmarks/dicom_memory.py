"""Peak memory of reading a large IVOCT DICOM frame by frame through ``octseg.io``.

Writes a multi-frame For Presentation (or For Processing) file of about ``--size-mb`` MB - the
header with pydicom, the pixel data streamed to disk in chunks so that writing needs little
memory - then, in a fresh process, opens it with ``read_pullback`` and decodes every frame in
chunks of ``--chunk`` frames, reporting the peak resident set size (``ru_maxrss``) and the peak
traced Python/numpy allocation (``tracemalloc``) against the file size.

    .venv/bin/python benchmarks/dicom_memory.py --size-mb 600
    .venv/bin/python benchmarks/dicom_memory.py --size-mb 600 --compare-full   # + pixel_array
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_large(path: Path, n: int, h: int, w: int, space: str) -> None:
    from pydicom.uid import ExplicitVRLittleEndian

    from octseg.io.dicom import _ivoct_header

    ds = _ivoct_header(
        space=space, n=n, h=h, w=w, pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        catheter_center=None, series_description="octseg memory benchmark",
        patient_name=None, patient_id=None,
    )  # fmt: skip
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "00"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)  # header only; Pixel Data appended below
    nbytes = n * h * w
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((np.sin(xx / 23.0) * np.cos(yy / 31.0) * 0.5 + 0.5) * 200).astype(np.uint8)
    with open(path, "ab") as fh:
        fh.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, nbytes + (nbytes % 2)))
        for i in range(n):
            frame = base + rng.integers(0, 40, (h, w), dtype=np.uint8)
            frame[0, 0] = i % 256
            fh.write(frame.tobytes())
        if nbytes % 2:
            fh.write(b"\0")


def measure(path: str, chunk: int, full: bool) -> dict:
    import resource
    import tracemalloc

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

    from octseg.io import read_pullback

    t0 = time.perf_counter()
    pb = read_pullback(path)
    base = rss_mb()
    tracemalloc.start()
    checksum = 0.0
    if full:
        import pydicom

        arr = pydicom.dcmread(path).pixel_array
        checksum = float(arr[:, 0, 0].sum())
    else:
        for _, frames in pb.iter_chunks(chunk):
            checksum += float(frames[:, 0, 0].sum())
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "method": "dcmread().pixel_array (whole file)"
        if full
        else f"read_pullback chunks of {chunk}",
        "frames": pb.n_frames,
        "frame_shape": [pb.height, pb.width],
        "rss_after_open_mb": round(base, 1),
        "peak_rss_mb": round(rss_mb(), 1),
        "traced_peak_mb": round(traced_peak / 2**20, 1),
        "seconds": round(time.perf_counter() - t0, 2),
        "checksum": checksum,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=600.0)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--space", choices=("cartesian", "polar"), default="cartesian")
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--compare-full", action="store_true", help="also time a whole-file decode")
    ap.add_argument("--keep", type=Path, help="write the file here and keep it")
    ap.add_argument(
        "--_measure", nargs=3, metavar=("PATH", "CHUNK", "FULL"), help=argparse.SUPPRESS
    )
    a = ap.parse_args()
    if a._measure:
        print(json.dumps(measure(a._measure[0], int(a._measure[1]), a._measure[2] == "1")))
        return
    n = max(1, int(a.size_mb * 2**20 / (a.height * a.width)))
    tmpdir = tempfile.TemporaryDirectory(prefix="octseg-dcm-bench-")
    path = a.keep or Path(tmpdir.name) / "large.dcm"
    t0 = time.perf_counter()
    write_large(path, n, a.height, a.width, a.space)
    size_mb = os.path.getsize(path) / 2**20
    print(f"wrote {path}: {n} frames of {a.height}x{a.width} uint8, {size_mb:.0f} MB "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    runs = [("0",)] + ([("1",)] if a.compare_full else [])
    for (full,) in runs:
        out = subprocess.run(
            [sys.executable, __file__, "--_measure", str(path), str(a.chunk), full],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["file_mb"] = round(size_mb, 1)
        res["peak_rss_over_file"] = round(res["peak_rss_mb"] / size_mb, 3)
        print(json.dumps(res))
    tmpdir.cleanup()


if __name__ == "__main__":
    main()
