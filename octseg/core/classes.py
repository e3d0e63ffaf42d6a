"""Label classes shared by the generator, the model, the geometry module and evaluation.

Classes 0-4 are the original schema (docs/dataset.md); 5 and 6 (plaque) were added after
them, so label files and models of the 5-class schema read and run unchanged: a model predicts
the classes listed in its checkpoint (``data.classes``), never "all of :data:`CLASS_NAMES`".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from octseg.core.errors import InputError

BACKGROUND = 0  # background / vessel wall
LUMEN = 1  # lumen, including the catheter
CALCIUM = 2
STRUT = 3  # stent strut blooming
GUIDEWIRE = 4  # guidewire and its shadow sector
FIBROUS_CAP = 5  # fibrous cap over a lipid core (tissue between the lumen and the lipid)
LIPID = 6  # lipid core (necrotic core): signal-poor, diffuse border

CLASS_NAMES: dict[int, str] = {
    BACKGROUND: "background",
    LUMEN: "lumen",
    CALCIUM: "calcium",
    STRUT: "strut",
    GUIDEWIRE: "guidewire",
    FIBROUS_CAP: "fibrous_cap",
    LIPID: "lipid",
}
NUM_CLASSES = len(CLASS_NAMES)
PLAQUE_CLASSES = (FIBROUS_CAP, LIPID)


def check_classes(classes: Sequence[int], source: str | Path | None = None) -> list[int]:
    """Validate a model class list (indices into :mod:`octseg.core.classes`, background first)."""
    try:
        out = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise InputError(source, f"class list {classes!r} is not a list of integers") from None
    unknown = [c for c in out if c not in CLASS_NAMES]
    if unknown:
        raise InputError(
            source,
            f"unknown class index(es) {unknown}; known classes are "
            + ", ".join(f"{k} {v}" for k, v in CLASS_NAMES.items()),
        )
    if len(set(out)) != len(out) or len(out) < 2 or out[0] != BACKGROUND:
        raise InputError(
            source, f"class list {out} must be distinct, start with 0 (background), have >= 2"
        )
    return out
