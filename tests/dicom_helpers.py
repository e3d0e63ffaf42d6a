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
