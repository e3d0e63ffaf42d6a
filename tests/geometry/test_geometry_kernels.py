"""The CPU fast paths of the geometry module give exactly what the plain formulations give."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from geometry_scenes import assert_same_measurements, label_file, scene

from octseg.geometry import calcium as ca_mod
from octseg.geometry import lumen as lu
from octseg.geometry import measure as me
from octseg.geometry.components import connected_components, flat_indices_of
from octseg.geometry.kernels import count_along, eq_u8, first_one
from octseg.geometry.measure import measure_labels


@pytest.mark.parametrize("shape", [(3, 7, 1024), (2, 504, 968), (4, 5, 257), (2, 3, 13)])
def test_count_along_matches_sum(shape):
    g = torch.Generator().manual_seed(0)
    ones = (torch.rand(shape, generator=g) < 0.9).to(torch.uint8)
    for dim in range(len(shape)):
        assert torch.equal(count_along(ones, dim), ones.sum(dim, dtype=torch.int32))
    ones.fill_(1)  # every group full: no uint8 overflow
    assert torch.equal(count_along(ones, -1), ones.sum(-1, dtype=torch.int32))


def test_eq_u8_and_first_one():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 5, (4, 9, 300), generator=g, dtype=torch.uint8)
    x[0, 0] = 0  # a row without the value
    buf = torch.empty_like(x)
    ones = eq_u8(x, 2, out=buf)
    assert ones.data_ptr() == buf.data_ptr() and ones.dtype == torch.uint8
    assert torch.equal(ones.bool(), x == 2)
    anyv, first = first_one(ones)
    ref = x == 2
    assert torch.equal(anyv, ref.any(-1))
    assert torch.equal(first[anyv], ref.to(torch.uint8).argmax(-1)[anyv])


def _first_exit_plain(vals, cath=0, shadow=None):
    """The rule written as a loop over rays (guidewire anywhere; a strut in the window of
    ``shadow`` samples before the exit, beyond ``cath``)."""
    b, n, s = vals.shape
    k = torch.full((b, n), s, dtype=torch.long)
    masked = torch.zeros((b, n), dtype=torch.bool)
    for i in range(b):
        for j in range(n):
            ray = vals[i, j].tolist()
            out = [t for t, c in enumerate(ray) if c not in (1, 3)]
            kk = out[0] if out else s
            lo = cath if shadow is None else max(cath, kk - shadow)
            strut = any(ray[t] == 3 for t in range(lo, kk))
            k[i, j] = kk
            masked[i, j] = 4 in ray or strut
    return k, masked


@pytest.mark.parametrize(("cath", "shadow"), [(0, None), (0, 4), (3, 4), (60, 4)])
def test_first_exit_matches_plain(cath, shadow):
    g = torch.Generator().manual_seed(2)
    # mostly lumen runs from the start with random tails; guidewire rarely, so that the strut
    # rule decides most masks
    vals = torch.randint(0, 4, (3, 50, 40), generator=g, dtype=torch.uint8)
    vals[torch.rand(vals.shape, generator=g) < 0.003] = 4
    cut = torch.randint(0, 41, (3, 50, 1), generator=g)
    lumen = torch.where(torch.rand(vals.shape, generator=g) < 0.08, 3, 1).to(torch.uint8)
    vals = torch.where(torch.arange(40) < cut, lumen, vals)
    vals[0, 0] = 1  # all lumen: k == S
    vals[0, 1, :5] = 3  # struts inside the lumen run
    vals[0, 2, :30] = 1  # a speck deep in the lumen and a strut near the exit
    vals[0, 2, 5], vals[0, 2, 28], vals[0, 2, 30:] = 3, 3, 0
    k, masked = lu._first_exit(vals, cath, shadow_samples=shadow)
    k2, masked2 = _first_exit_plain(vals, cath, shadow)
    assert torch.equal(k, k2) and torch.equal(masked, masked2)
    assert not masked2.all() and masked2.any()


def test_flat_indices_of_matches_nonzero():
    g = torch.Generator().manual_seed(3)
    lab = torch.randint(0, 3, (5, 37, 41), generator=g, dtype=torch.uint8)
    lab[lab == 2] = 0
    lab[(torch.rand(lab.shape, generator=g) < 0.02)] = 3
    lab[2] = 0  # a frame without the value
    ref = (lab == 3).reshape(-1).nonzero().squeeze(1)
    for p in (1, 2, 5):  # scratch buffers of 1, 2, 5 frames
        work = torch.empty((p, 37, 41), dtype=torch.uint8)
        assert torch.equal(flat_indices_of(lab, 3, work), ref)
    assert torch.equal(flat_indices_of(lab, 3), ref)
    assert flat_indices_of(torch.zeros(2, 4, 4, dtype=torch.uint8), 3).numel() == 0
    f, r, c, comp, n = connected_components(lab == 3)
    assert n >= 1 and torch.equal(f * 37 * 41 + r * 41 + c, ref)


@pytest.mark.parametrize("center", [(31.5, 24.5), (12.0, 40.0)])
def test_cartesian_ray_sampling_matches_table(center):
    """The affine Cartesian sampling (with zero padding where rays leave the frame) gives the
    same samples as the general lookup-table path, origins near and far from the borders."""
    g = torch.Generator().manual_seed(4)
    h, w = 64, 50
    lab = torch.randint(0, 5, (4, h, w), generator=g, dtype=torch.uint8)
    grid = ca_mod.RayGrid("cartesian", (h, w), 0.01, center, 96, 72, 40, "cpu")
    for oy, ox in (([0, 3, -5, 1], [0, -2, 4, 1]), ([-30, 30, 0, 10], [-20, 20, 25, -24])):
        oy, ox = torch.tensor(oy), torch.tensor(ox)
        fast = grid.sample(lab, oy, ox)
        assert torch.equal(fast, grid._sample_table(lab, oy, ox))
    # rays fully inside: no padding needed; still the same
    grid = ca_mod.RayGrid("cartesian", (h, w), 0.01, center, 64, 72, 8, "cpu")
    oy, ox = torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    assert torch.equal(grid.sample(lab, oy, ox), grid._sample_table(lab, oy, ox))


def _frames(space):
    frames = []
    for k in range(5):
        c = (0.05 * k - 0.1, 0.1 - 0.04 * k)
        struts = [(0.55 + 0.05 * (i % 2), 40 * i + 7 * k) for i in range(9)] if k % 2 else []
        frames.append(
            scene(
                space,
                lumen=(*c, 0.6 + 0.03 * k),
                calcium=[(0.75, 0.95 + 0.05 * k, 20 * k, 150 + 30 * k)],
                shadow=(200 + 10 * k, 220 + 10 * k, 0.3),
                struts=struts,
            )
        )
    frames.append(np.zeros_like(frames[0]))  # an empty frame
    return frames


@pytest.mark.parametrize("space", ["cartesian", "polar"])
def test_results_do_not_depend_on_pieces_or_chunks(space, monkeypatch):
    """Tiny work pieces (one frame each, several pieces per ray cast) and chunks of 1, 4 and
    all frames give the same numbers: counts and flags exactly, floats to
    ``geometry_scenes.CHUNKING_REL`` (other batch shapes, same definitions)."""
    lf = label_file(_frames(space), space)
    ref = measure_labels(lf, chunk_frames=64)
    assert ref.frames[1]["n_struts"] == 9 and ref.frames[0]["calcium_arc_deg"] > 100
    monkeypatch.setattr(me, "_PIXEL_BUDGET", 1)
    monkeypatch.setattr(me, "_RAY_BUDGET", 1000)
    for chunk in (1, 4, 64):
        m = measure_labels(lf, chunk_frames=chunk)
        assert_same_measurements(m.frames, ref.frames)
        assert_same_measurements(m.struts, ref.struts)
        assert_same_measurements(m.summary, ref.summary)


def test_measure_cli_threads_option(tmp_path, capsys):
    from octseg.cli import main
    from octseg.geometry.tables import read_csv
    from octseg.io.labels import save_labels

    lf = label_file(_frames("cartesian")[:2], "cartesian")
    save_labels(tmp_path / "labels.npz", lf)
    before = torch.get_num_threads()
    try:
        args = ["measure", str(tmp_path / "labels.npz"), "--quiet", "--threads", "1"]
        assert main([*args, "--out", str(tmp_path / "a")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    rows = read_csv(tmp_path / "a" / "frames.csv")
    ref = measure_labels(lf).frames
    assert [r["n_struts"] for r in rows] == [r["n_struts"] for r in ref]
    assert rows[0]["lumen_area_mm2"] == pytest.approx(
        ref[0]["lumen_area_mm2"], rel=1e-5
    )  # CSV: 6 digits
    bad = ["measure", str(tmp_path / "labels.npz"), "--out", str(tmp_path / "b"), "--threads", "-1"]
    assert main(bad) == 1
    assert "--threads" in capsys.readouterr().err


def test_measure_cli_prints_a_settings_template_that_reads_back(tmp_path, capsys):
    """``octseg measure --print-defaults`` is the settings file users edit for ``--config``."""
    from octseg.cli import main
    from octseg.geometry.settings import GeometrySettings

    assert main(["measure", "--print-defaults"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "g.yaml").write_text(text.replace("score_arc_deg: 180.0", "score_arc_deg: 90.0"))
    read = GeometrySettings.from_yaml(tmp_path / "g.yaml")
    assert read.score_arc_deg == 90.0
    assert dataclasses.replace(read, score_arc_deg=180.0) == GeometrySettings()
    assert main(["measure", "--out", str(tmp_path / "x")]) == 1
    assert "needs a label file" in capsys.readouterr().err
