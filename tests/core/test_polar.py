"""octseg.core.polar: conventions, analytic cases, round-trip errors (measured), batching, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from octseg.core.polar import cartesian_to_polar, polar_to_cartesian

A, R, PS = 360, 100, 0.01  # A-lines, samples per A-line, mm per sample
N, CS = 201, 0.01  # Cartesian size and spacing
C = (N - 1) / 2.0


def _grid(n=N, center=(C, C)):
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    return yy - center[0], xx - center[1]


def _to_cart(polar, **kw):
    kw = {"out_size": (N, N), "polar_spacing_mm": PS, "cart_spacing_mm": CS, **kw}
    return polar_to_cartesian(polar, **kw)


def _to_polar(cart, **kw):
    kw = {"n_alines": A, "n_samples": R, "cart_spacing_mm": CS, "polar_spacing_mm": PS, **kw}
    return cartesian_to_polar(cart, **kw)


def test_direction_convention_theta_90_points_to_plus_y():
    polar = torch.zeros(1, A, R)
    polar[0, A // 4, 20:80] = 1.0  # theta = 90 degrees
    polar[0, 0, 20:80] = 0.5  # theta = 0
    cart = _to_cart(polar, mode="nearest")[0].numpy()
    c = int(C)
    assert cart[c + 50, c] == 1.0 and cart[c - 50, c] == 0.0  # +y rows (down), not -y
    assert cart[c, c + 50] == 0.5 and cart[c, c - 50] == 0.0  # theta 0 -> +x columns
    # and back: a bright pixel at +y lands on A-line A/4
    img = torch.zeros(1, N, N)
    img[0, c + 40, c] = 1.0
    pol = _to_polar(img, mode="nearest")[0].numpy()
    i, j = np.unravel_index(np.argmax(pol), pol.shape)
    assert (i, j) == (A // 4, 40)


def test_radius_ramp_is_distance_from_centre():
    polar = torch.arange(R, dtype=torch.float32).mul(PS).expand(2, A, R).clone()  # value = r (mm)
    cart = _to_cart(polar)[0].numpy()
    dy, dx = _grid()
    r = np.hypot(dy, dx) * CS
    inside = r < (R - 2) * PS
    assert np.abs(cart[inside] - r[inside]).max() < 1e-4  # linear in r: bilinear is exact
    assert np.all(cart[r > R * PS] == 0)  # outside the A-lines: zero


def test_seam_is_continuous():
    # a periodic function of theta, sharpest at the seam (theta = 0 = 2 pi)
    theta = torch.arange(A) * (2 * math.pi / A)
    polar = torch.cos(theta)[:, None].expand(A, R)[None].clone()
    cart = _to_cart(polar)[0].numpy()
    dy, dx = _grid()
    r = np.hypot(dy, dx)
    expected = np.cos(np.arctan2(dy, dx))
    ok = (r > 5) & (r * CS < (R - 2) * PS)
    err = np.abs(cart - expected)
    seam = ok & (np.abs(dy) <= 2) & (dx > 0)  # the rows right around theta = 0
    assert err[ok].max() < 2e-4
    assert err[seam].max() < 2e-4  # no jump where A-line A-1 meets A-line 0
    # the same with a jump-free but asymmetric signal: sin has maximum slope at the seam
    polar = torch.sin(theta)[:, None].expand(A, R)[None].clone()
    cart = _to_cart(polar)[0].numpy()
    err = np.abs(cart - np.sin(np.arctan2(dy, dx)))
    assert err[seam].max() < 1e-3


def _smooth_image(seed=0):
    dy, dx = _grid()
    rng = np.random.default_rng(seed)
    img = np.zeros((N, N))
    for _ in range(6):
        ky, kx, ph = rng.uniform(-0.08, 0.08, 2).tolist() + [rng.uniform(0, 6)]
        img += np.cos(ky * dy + kx * dx + ph)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def test_image_roundtrip_error_measured():
    img = torch.from_numpy(_smooth_image())[None]
    back = _to_cart(_to_polar(img))[0].numpy()
    dy, dx = _grid()
    disk = np.hypot(dy, dx) * CS < (R - 3) * PS
    mae = np.abs(back - img[0].numpy())[disk].mean()
    # measured: ~1e-3 of the [0, 1] range for a smooth image on a 360x100 polar grid
    assert mae < 5e-3, mae


def test_label_roundtrip_changes_only_boundary_pixels():
    dy, dx = _grid()
    lab = np.zeros((N, N), np.uint8)
    lab[np.hypot(dy - 10, dx + 5) < 60] = 1  # off-centre lumen
    lab[(np.abs(dy + 30) < 8) & (np.abs(dx - 40) < 12)] = 2  # a block of "calcium"
    lab[np.hypot(dy, dx) < 8] = 3
    t = torch.from_numpy(lab)[None]
    pol = _to_polar(t, mode="nearest", n_alines=720)
    back = _to_cart(pol, mode="nearest")[0].numpy()
    assert back.dtype == np.uint8 and set(np.unique(back)) <= {0, 1, 2, 3}
    disk = np.hypot(dy, dx) * CS < (R - 3) * PS
    changed = (back != lab) & disk
    frac = changed.sum() / disk.sum()
    assert frac < 0.01, frac  # measured: a fraction of a percent
    # every changed pixel lies on a class boundary (within 1 pixel)
    boundary = np.zeros_like(changed)
    for k in np.unique(lab):
        m = lab == k
        boundary |= ndimage.binary_dilation(m) & ~ndimage.binary_erosion(m)
    boundary = ndimage.binary_dilation(boundary)
    assert not (changed & ~boundary).any()


def test_explicit_centre_and_spacings():
    cy, cx = 80.0, 120.0
    dy, dx = _grid(center=(cy, cx))
    lab = (np.hypot(dy, dx) * 0.02 < 0.5).astype(np.uint8)  # 0.5 mm disk at 0.02 mm/pixel
    pol = cartesian_to_polar(
        torch.from_numpy(lab)[None], n_alines=64, n_samples=60, cart_spacing_mm=0.02,
        polar_spacing_mm=0.01, center=(cy, cx), mode="nearest",
    )[0].numpy()  # fmt: skip
    radius = pol.sum(axis=1) * 0.01  # lumen run length per A-line, mm
    assert np.abs(radius - 0.5).max() <= 0.02  # same radius on every A-line: centred
    cart = polar_to_cartesian(
        torch.from_numpy(pol)[None], out_size=(N, N), polar_spacing_mm=0.01,
        cart_spacing_mm=0.02, center=(cy, cx), mode="nearest",
    )[0].numpy()  # fmt: skip
    assert np.mean(cart != lab) < 0.005


def test_batching_and_channels_match_single_frames():
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 40, 30, generator=rng)
    kw = {"out_size": (50, 50), "polar_spacing_mm": 0.02, "cart_spacing_mm": 0.025}
    batched = polar_to_cartesian(x, **kw)
    assert batched.shape == (3, 2, 50, 50)
    for b in range(3):
        for c in range(2):
            single = polar_to_cartesian(x[b : b + 1, c], **kw)  # (1, H, W) form
            torch.testing.assert_close(batched[b, c], single[0])
    back = cartesian_to_polar(batched, n_alines=40, n_samples=30, cart_spacing_mm=0.025,
                              polar_spacing_mm=0.02)  # fmt: skip
    assert back.shape == (3, 2, 40, 30)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_labels_stay_integer(dtype):
    lab = torch.randint(0, 5, (2, 36, 20), dtype=dtype)
    cart = polar_to_cartesian(lab, out_size=(41, 41), polar_spacing_mm=1, cart_spacing_mm=1,
                              mode="nearest")  # fmt: skip
    assert cart.dtype == dtype
    assert set(cart.unique().tolist()) <= set(lab.unique().tolist()) | {0}
    pol = cartesian_to_polar(cart, n_alines=36, n_samples=20, cart_spacing_mm=1,
                             polar_spacing_mm=1, mode="nearest")  # fmt: skip
    assert pol.dtype == dtype


def test_float64_and_bad_input():
    x = torch.rand(1, 10, 8, dtype=torch.float64)
    out = polar_to_cartesian(x, out_size=(9, 9), polar_spacing_mm=1, cart_spacing_mm=1)
    assert out.dtype == torch.float64
    with pytest.raises(ValueError, match="expected"):
        polar_to_cartesian(
            torch.rand(10, 8), out_size=(9, 9), polar_spacing_mm=1, cart_spacing_mm=1
        )
    with pytest.raises(ValueError, match="mode"):
        cartesian_to_polar(x, n_alines=4, n_samples=4, cart_spacing_mm=1, polar_spacing_mm=1,
                           mode="bicubic")  # fmt: skip


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.rand(2, 64, 50)
    kw = {"out_size": (99, 99), "polar_spacing_mm": 0.01, "cart_spacing_mm": 0.01}
    cpu = polar_to_cartesian(x, **kw)
    gpu = polar_to_cartesian(x.cuda(), **kw)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)
    lab = torch.randint(0, 5, (2, 64, 50), dtype=torch.uint8)
    torch.testing.assert_close(
        polar_to_cartesian(lab.cuda(), mode="nearest", **kw).cpu(),
        polar_to_cartesian(lab, mode="nearest", **kw),
    )
