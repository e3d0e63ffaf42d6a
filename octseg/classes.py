"""Label classes shared by the generator, the model, the geometry module and evaluation.

Classes 0-4 are the original schema (docs/dataset.md); 5 and 6 (plaque) were added after
them, so label files and models of the 5-class schema read and run unchanged: a model predicts
the classes listed in its checkpoint (``data.classes``), never "all of :data:`CLASS_NAMES`".
"""

from __future__ import annotations

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
