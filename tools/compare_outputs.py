"""Compare two octseg output folders (demo, infer, evaluate, training) ignoring what must differ
between two runs: absolute paths, timings, and the manifest fingerprint (it hashes the checkpoint
file, which stores its data paths and frames/s).

Run: python tools/compare_outputs.py OLD NEW
CSV / Markdown / PNG byte for byte, npz array by array, JSON without paths and timings,
checkpoints tensor by tensor. Prints each differing file and exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

KINDS = {".csv", ".md", ".png", ".npz", ".json", ".ckpt"}
VOLATILE = {"auto", "manual", "out", "fingerprint", "started", "finished", "written", "created"}


def _stable(o: Any, root: str) -> Any:
    if isinstance(o, dict):
        return {
            k: _stable(v, root)
            for k, v in o.items()
            if k not in VOLATILE and not k.endswith(("_s", "_at")) and "time" not in k
        }
    if isinstance(o, list):
        return [_stable(v, root) for v in o]
    if isinstance(o, str) and root in o:
        return "PATH"
    return o


def _npz_equal(a: Path, b: Path) -> bool:
    with np.load(a) as za, np.load(b) as zb:
        same_keys = sorted(za.files) == sorted(zb.files)
        return same_keys and all(np.array_equal(za[k], zb[k]) for k in za.files)


def _ckpt_equal(a: Path, b: Path) -> bool:
    sa = torch.load(a, weights_only=True, map_location="cpu")["state_dict"]
    sb = torch.load(b, weights_only=True, map_location="cpu")["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def same_file(a: Path, b: Path, roots: tuple[str, str]) -> bool:
    """Whether two files of one of the compared KINDS hold the same results."""
    if a.suffix in (".csv", ".md", ".png"):
        return a.read_bytes() == b.read_bytes()
    if a.suffix == ".npz":
        return _npz_equal(a, b)
    if a.suffix == ".json":
        return _stable(json.loads(a.read_text()), roots[0]) == _stable(
            json.loads(b.read_text()), roots[1]
        )
    return _ckpt_equal(a, b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    roots = (str(args.old.resolve()), str(args.new.resolve()))
    n_same = n_diff = 0
    for a in sorted(p for p in args.old.rglob("*") if p.is_file()):
        rel = a.relative_to(args.old)
        b = args.new / rel
        if a.suffix not in KINDS:
            continue
        verdict = same_file(a, b, roots) if b.is_file() else False
        n_same += verdict
        n_diff += not verdict
        if not verdict:
            print(f"{'DIFF' if b.is_file() else 'MISSING'} {rel}")
    print(f"compared {n_same + n_diff} files: {n_same} identical, {n_diff} different")
    return 1 if n_diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
