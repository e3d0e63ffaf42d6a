"""Label classes shared by the generator, the model, the geometry module and evaluation."""

from __future__ import annotations

BACKGROUND = 0  # background / vessel wall
LUMEN = 1  # lumen, including the catheter
CALCIUM = 2
STRUT = 3  # stent strut blooming
GUIDEWIRE = 4  # guidewire and its shadow sector

CLASS_NAMES: dict[int, str] = {
    BACKGROUND: "background",
    LUMEN: "lumen",
    CALCIUM: "calcium",
    STRUT: "strut",
    GUIDEWIRE: "guidewire",
}
NUM_CLASSES = len(CLASS_NAMES)
