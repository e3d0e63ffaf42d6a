"""octseg.report.training.overlay_panels: the [image | label | prediction] panels for TensorBoard."""

from __future__ import annotations

import numpy as np
import torch

from octseg.report.training import overlay, overlay_panels

A, R, PS = 48, 32, 0.05


def polar_case():
    """Speckle image, label = lumen (channel 1) out to sample 12, prediction out to sample 20,
    and a class-3 spot (channel 2 of classes [0, 1, 3]) in both."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(A, R, generator=g)
    lab = torch.zeros(A, R, dtype=torch.long)
    lab[:, :12] = 1
    prd = torch.zeros(A, R, dtype=torch.long)
    prd[:, :20] = 1
    lab[5:9, 25:28] = 2
    prd[5:9, 25:28] = 2
    return img, lab, prd


def test_panels_are_uint8_rgb_of_the_expected_shapes():
    img, lab, prd = polar_case()
    polar, cart = overlay_panels(img, lab, prd, [0, 1, 3], PS)
    assert polar.dtype == np.uint8 and cart.dtype == np.uint8
    assert polar.shape == (A, 3 * R, 3)
    assert cart.shape == (2 * R, 3 * 2 * R, 3)


def test_polar_panels_show_image_label_and_prediction():
    img, lab, prd = polar_case()
    classes = [0, 1, 3]
    polar, _ = overlay_panels(img, lab, prd, classes, PS)
    p_img, p_lab, p_prd = polar[:, :R], polar[:, R : 2 * R], polar[:, 2 * R :]
    # the first panel is the plain grey image
    assert np.array_equal(p_img[..., 0], p_img[..., 1])
    assert np.array_equal(p_img[..., 1], p_img[..., 2])
    # channel indices are shown as their classes (channel 2 -> class 3)
    as_classes = np.asarray(classes, dtype=np.uint8)
    assert np.array_equal(p_lab, overlay(img.numpy(), as_classes[lab.numpy()]))
    assert np.array_equal(p_prd, overlay(img.numpy(), as_classes[prd.numpy()]))
    # label and prediction panels differ exactly where prediction and label differ
    differs = (p_lab != p_prd).any(axis=2)
    assert np.array_equal(differs, (lab != prd).numpy())
    # the label panel differs from the image where the label is not background
    coloured = (p_lab != p_img).any(axis=2)
    assert coloured[lab.numpy() > 0].mean() > 0.95
    assert not coloured[lab.numpy() == 0].any()


def test_cartesian_panels_differ_on_the_ring_between_the_two_lumen_borders():
    img, lab, prd = polar_case()
    _, cart = overlay_panels(img, lab, prd, [0, 1, 3], PS)
    n = 2 * R
    c_img, c_lab, c_prd = cart[:, :n], cart[:, n : 2 * n], cart[:, 2 * n :]
    assert np.array_equal(c_img[..., 0], c_img[..., 2])  # grey
    differs = (c_lab != c_prd).any(axis=2)
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)  # in samples: same spacing both sides
    ring = (r > 13) & (r < 19)
    assert differs[ring].mean() > 0.95
    assert not differs[(r < 11) | (r > 21)].any()
    # inside the label's lumen both panels are coloured the same, unlike the plain image
    inside = r < 10
    assert (c_lab != c_img).any(axis=2)[inside].mean() > 0.95


def test_identical_prediction_gives_identical_panels():
    img, lab, _ = polar_case()
    polar, cart = overlay_panels(img.double(), lab, lab.clone(), [0, 1, 3], PS)
    assert np.array_equal(polar[:, R : 2 * R], polar[:, 2 * R :])
    assert np.array_equal(cart[:, 2 * R : 4 * R], cart[:, 4 * R :])
