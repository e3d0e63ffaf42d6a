"""A small IVOCT DICOM source and a label stack for the DICOM-SEG tests."""

from __future__ import annotations

import numpy as np

from octseg.io.dicom_write import write_ivoct_dicom


def _source(tmp_path, space):
    p = tmp_path / f"src-{space}.dcm"
    f = np.random.default_rng(0).integers(0, 256, (4, 16, 20), dtype=np.uint8)
    write_ivoct_dicom(
        p, f, space=space, pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        patient_name="Doe^Jane", patient_id="PID-424242",
    )  # fmt: skip
    return p


def _labels():
    lab = np.zeros((4, 16, 20), np.uint8)
    lab[:, 2:9, 3:12] = 1
    lab[1, 10:12, :] = 2
    lab[2, 0:2, 0:3] = 3
    lab[2, 14:, 15:] = 4
    lab[3] = 0  # an empty frame
    return lab


def recoloured_dicom(path, grey: np.ndarray, photometric: str, lut: np.ndarray) -> None:
    """``grey`` uint8 frames written as a Cartesian colour DICOM (``"RGB"`` or ``"PALETTE
    COLOR"``) whose colours are the map ``lut`` ``(256, 3)``: written in sepia, then the pixel
    data or the colour table replaced."""
    import pydicom

    write_ivoct_dicom(
        path, grey, space="cartesian", pixel_spacing_mm=0.01, frame_spacing_mm=0.2,
        photometric=photometric,
    )  # fmt: skip
    ds = pydicom.dcmread(path)
    if photometric == "RGB":
        ds.PixelData = lut[grey].tobytes()
    else:
        for k, colour in enumerate(("Red", "Green", "Blue")):
            ds[f"{colour}PaletteColorLookupTableDescriptor"].value = [256, 0, 16]
            table = lut[:, k].astype(np.uint16) * 257
            setattr(ds, f"{colour}PaletteColorLookupTableData", table.tobytes())
    ds.save_as(path)
