"""The geometry and the post-processing give the CPU's results on a GPU (skipped without CUDA)
and with a GPU's piece sizes (16x larger, ``kernels.for_device``; on any machine).

Frames: the benchmarks' label maps (elliptic lumen with non-lumen specks, calcium, guidewire
shadow, struts; a lumen ring beyond the wall in every other frame), both spaces.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from geometry_scenes import assert_same_measurements

import octseg.geometry.lumen_path as lp
import octseg.geometry.measure as measure
import octseg.model.postprocess as pp
from benchmarks.postprocess import VARIANTS, calcium_specks, dirty_frames
from octseg.core.classes import BACKGROUND, CALCIUM
from octseg.geometry import measure_labels
from octseg.geometry.kernels import ACCELERATOR_FACTOR
from octseg.io.labels import LabelFile
from octseg.model.postprocess import postprocess_labels

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

SPACES = ["cartesian", "polar"]


def assert_same_rows(cpu: list[dict], other: list[dict]) -> None:
    """Same rows on two devices (the same device, other piece sizes:
    ``geometry_scenes.assert_same_measurements``): angles within one ray (0.5°: a ray on a boundary may flip between devices),
    other numbers within 1e-4 relative / 1e-4 absolute (float32 sums in another order)."""
    assert len(cpu) == len(other)
    for a, b in zip(cpu, other, strict=True):
        assert a.keys() == b.keys()
        for key, va in a.items():
            vb = b[key]
            if isinstance(va, float) and math.isnan(va):
                assert isinstance(vb, float) and math.isnan(vb), key
            elif isinstance(va, (int, float, np.floating)):
                tol = 0.5 if key.endswith("_deg") else 1e-4
                assert vb == pytest.approx(va, rel=1e-4, abs=tol), key
            else:
                assert va == vb, key


ISOLATION = 3  # frames cleared of calcium on each side of the isolated frame


def rules_frames(n: int, space: str, variant: str) -> tuple[np.ndarray, float, tuple | None, dict]:
    """``dirty_frames`` with calcium specks on every frame and the frame ``n // 2`` isolated (no
    calcium within ``ISOLATION`` frames: a one-frame lesion), with the settings of the
    post-processing benchmark's ``variant`` (lumen contour, calcium rules)."""
    labels, ps, c = dirty_frames(n, space, specks=5)
    calcium_specks(labels, 5)
    mid = n // 2
    for f in [*range(mid - ISOLATION, mid), *range(mid + 1, mid + ISOLATION + 1)]:
        labels[f][labels[f] == CALCIUM] = BACKGROUND
    rule, calcium = VARIANTS[variant]
    return labels, ps, c, {"lumen_contour": rule, **calcium}


def run_rules(labels, space, ps, c, settings, **kw) -> np.ndarray:
    return postprocess_labels(
        labels.copy(), space, ps, c, settings=settings, frame_spacing_mm=0.2, **kw
    )


def assert_rules_ran(labels, out, space, ps, c) -> None:
    """``out`` (post-processed with calcium rules) against the contour alone: the minimum area
    took specks the depth limit leaves, the minimum length the isolated frame's lesion."""
    base = run_rules(labels, space, ps, c, {"lumen_contour": "smooth"})
    mid = len(labels) // 2
    assert 0 < (out == CALCIUM).sum() < (base == CALCIUM).sum()
    assert (base[mid] == CALCIUM).any() and not (out[mid] == CALCIUM).any()


RULES = ["smooth+calcium", "smooth+calcium+track3"]


@pytest.mark.parametrize("variant", ["smooth", *RULES])
@pytest.mark.parametrize("space", SPACES)
def test_accelerator_piece_sizes_give_the_same_results(space, variant, monkeypatch):
    """Every piece size that ``for_device`` scales, once small (the CPU's; the contour's dynamic
    programme in pieces of 2 frames) and once 16x larger: the same labels and tables, with and
    without the calcium rules (minimum area in chunks, minimum length, tracked along the
    pullback)."""
    monkeypatch.setattr(lp, "PIECE", 2)
    labels, ps, c, settings = rules_frames(20, space, variant)
    small = run_rules(labels, space, ps, c, settings)
    if variant != "smooth":
        assert_rules_ran(labels, small, space, ps, c)
    lf = LabelFile(labels=small, space=space, pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    rows = measure_labels(lf, chunk_frames=20)
    calls = []

    def big(base, device):
        calls.append(base)
        return base * ACCELERATOR_FACTOR

    for module in (measure, pp, lp):
        monkeypatch.setattr(module, "for_device", big)
    large = run_rules(labels, space, ps, c, settings)
    # the post-processing's frames per step and the contour's pieces took the larger sizes
    assert {pp.PostprocessSettings().chunk_frames, lp.PIECE} <= set(calls)
    np.testing.assert_array_equal(large, small)
    calls.clear()
    again = measure_labels(lf, chunk_frames=20)
    assert {measure._PIXEL_BUDGET, measure._RAY_BUDGET} <= set(calls)  # ... and the geometry's
    assert rows.struts
    assert_same_measurements(rows.frames, again.frames)  # the tolerance of chunkings
    assert_same_measurements(rows.struts, again.struts)


@pytest.mark.parametrize("space", SPACES)
def test_tracking_keeps_small_pieces_the_minimum_area_removes(space):
    """The benchmark frames' specks beside the calcium sector: tracking puts some back."""
    labels, ps, c, plain = rules_frames(20, space, "smooth+calcium")
    tracked = {**plain, **VARIANTS["smooth+calcium+track3"][1]}
    kept = (run_rules(labels, space, ps, c, plain) == CALCIUM).sum()
    assert (run_rules(labels, space, ps, c, tracked) == CALCIUM).sum() > kept


@pytest.mark.parametrize("rule", ["smooth", "first_wall"])
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.gpu
@needs_cuda
def test_postprocess_on_cuda_matches_cpu(space, rule):
    labels, ps, c = dirty_frames(6, space, specks=5)
    kw = {"settings": {"lumen_contour": rule}}
    cpu = postprocess_labels(labels.copy(), space, ps, c, device="cpu", **kw)
    gpu = postprocess_labels(labels.copy(), space, ps, c, device="cuda", **kw)
    assert (cpu != labels).any()  # there was something to repair
    # ray sampling in float32 on two devices: a pixel on a ray boundary may flip
    assert (gpu != cpu).mean() < 1e-4


@pytest.mark.parametrize("variant", RULES)
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.gpu
@needs_cuda
def test_calcium_rules_on_cuda_match_cpu(space, variant):
    """The calcium rules (minimum area on the GPU, minimum length, tracking) on a GPU."""
    labels, ps, c, settings = rules_frames(12, space, variant)
    cpu = run_rules(labels, space, ps, c, settings, device="cpu")
    gpu = run_rules(labels, space, ps, c, settings, device="cuda")
    assert_rules_ran(labels, cpu, space, ps, c)
    assert (gpu != cpu).mean() < 1e-4  # float32 ray sampling: a boundary pixel may flip


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.gpu
@needs_cuda
def test_measure_labels_on_cuda_matches_cpu(space):
    labels, ps, c = dirty_frames(6, space, specks=5)
    postprocess_labels(labels, space, ps, c)
    lf = LabelFile(labels=labels, space=space, pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    cpu = measure_labels(lf, device="cpu")
    gpu = measure_labels(lf, device="cuda")
    assert len(cpu.frames) == 6 and cpu.struts
    assert_same_rows(cpu.frames, gpu.frames)
    assert_same_rows(cpu.struts, gpu.struts)


@pytest.mark.gpu
@needs_cuda
def test_measure_labels_on_cuda_in_staged_chunks_matches_cpu():
    """Several chunks: the pinned staging and the side-stream copies (octseg.geometry.transfer)."""
    labels, ps, c = dirty_frames(7, "cartesian", specks=5)
    postprocess_labels(labels, "cartesian", ps, c)
    lf = LabelFile(labels=labels, space="cartesian", pixel_spacing_mm=ps, frame_spacing_mm=0.2)
    whole = measure_labels(lf, device="cuda")  # one chunk: copied without staging
    staged = measure_labels(lf, device="cuda", chunk_frames=2)
    assert len(staged.frames) == 7 and staged.struts
    # float32 sums in another order across chunks on the GPU (strut distances differed by
    # 3e-6 relative on an H200, over the CPU tests' chunking tolerance): compared at the
    # device tolerance of assert_same_rows
    assert_same_rows(whole.frames, staged.frames)
    assert_same_rows(whole.struts, staged.struts)
    cpu = measure_labels(lf, device="cpu")
    assert_same_rows(cpu.frames, staged.frames)
    assert_same_rows(cpu.struts, staged.struts)
