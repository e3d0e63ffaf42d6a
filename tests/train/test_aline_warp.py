"""ALineWarp: a seamless periodic warp of the A-line axis that squeezes lesions on one side of the
frame and stretches them on the other, image and mask together."""

from __future__ import annotations

import numpy as np
import pytest

from octseg.train.augment import ALineWarp, build_augmentation

A, R = 360, 40


def _block(centre: int, half: int = 10) -> np.ndarray:
    """A mask with a 'lesion' over A-lines centre +- half (periodic) and samples 10-20."""
    mask = np.zeros((A, R), np.uint8)
    rows = np.arange(centre - half, centre + half + 1) % A
    mask[rows, 10:20] = 2
    return mask


def _width(mask: np.ndarray) -> int:
    return int(mask[:, 15].astype(bool).sum())


def test_no_strength_is_the_identity():
    img = np.random.default_rng(0).random((A, R, 3)).astype(np.float32)
    warp = ALineWarp(0.5)
    assert np.allclose(warp.apply(img, b=0.0, phase=1.0), img, atol=1e-6)
    assert np.array_equal(warp.apply_to_mask(_block(90), b=0.0, phase=1.0), _block(90))


@pytest.mark.parametrize("b", [0.3, 0.5])
def test_a_lesion_is_squeezed_at_the_phase_and_stretched_opposite(b):
    warp = ALineWarp(0.5)
    phase = np.pi / 2  # A-line 90
    # the output near A-line 90 reads the input 1 + b times faster: a lesion there looks narrower
    src = warp.source(A, b, phase)
    at = int(np.argmin(np.abs(src - 90)))  # where the lesion centred on input A-line 90 lands
    squeezed = _width(warp.apply_to_mask(_block(90), b=b, phase=phase))
    stretched = _width(warp.apply_to_mask(_block(270), b=b, phase=phase))
    assert abs(at - 90) <= 1
    assert squeezed == pytest.approx(21 / (1 + b), abs=2)
    assert stretched == pytest.approx(21 / (1 - b), abs=2)


def test_no_seam_and_image_follows_mask():
    theta = np.arange(A) * 2 * np.pi / A
    smooth = (0.5 + 0.4 * np.cos(3 * theta))[:, None, None] * np.ones((1, R, 2), np.float32)
    warp = ALineWarp(0.5)
    out = warp.apply(smooth.astype(np.float32), b=0.5, phase=2.0)

    def steps(x):  # A-line 359 -> 0 included
        return np.abs(np.diff(x[:, 0, 0], append=x[:1, 0, 0]))

    # a smooth periodic profile stays smooth everywhere, the wrap included: no step larger than
    # the profile's steepest, read 1.5 times faster
    assert steps(out).max() <= 1.5 * steps(smooth).max() + 1e-4
    mask = _block(200)
    img = mask.astype(np.float32)[..., None]
    wi, wm = warp.apply(img, b=0.4, phase=3.0), warp.apply_to_mask(mask, b=0.4, phase=3.0)
    assert ((wi[..., 0] > 1.0) == (wm == 2)).mean() > 0.995  # the same pixels, to a border A-line


def test_recipe_key_switches_it_on_and_the_strength_is_checked():
    names = lambda c: [type(t).__name__ for t in build_augmentation(c).transforms]  # noqa: E731
    assert "ALineWarp" not in names({"enabled": True})
    assert "ALineWarp" in names({"enabled": True, "aline_warp_p": 0.5, "aline_warp": 0.4})
    with pytest.raises(ValueError, match="aline_warp"):
        ALineWarp(1.0)
