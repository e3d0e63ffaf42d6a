"""``octseg review``: the server API (Starlette TestClient) on a synthetic pullback - tokens, path
safety, bad payloads, edits re-measured by octseg.geometry, undo/redo, saving in the dataset
layout with provenance, and the inference-output layout."""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from review_helpers import PID, copy_tree, inference_output, synth_dataset

from octseg.core.classes import CALCIUM, GUIDEWIRE, LUMEN, STRUT
from octseg.geometry import measure_labels
from octseg.io.labels import load_labels
from octseg.review.edits import contour_area_mm2, spline_radius

starlette = pytest.importorskip("starlette")
pytest.importorskip("httpx")  # starlette's TestClient runs on it
with warnings.catch_warnings():  # starlette >= 1.x asks for httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from octseg.review.server import Review, make_app  # noqa: E402

TOKEN = "test-token-123"
H = {"X-Octseg-Token": TOKEN}


@pytest.fixture(scope="session")
def polar_ds(tmp_path_factory) -> Path:
    return synth_dataset(tmp_path_factory.mktemp("polar") / "ds")


@pytest.fixture(scope="session")
def cart_ds(tmp_path_factory) -> Path:
    return synth_dataset(tmp_path_factory.mktemp("cart") / "ds", cartesian=True)


@pytest.fixture
def ds(polar_ds, tmp_path) -> Path:
    return copy_tree(polar_ds, tmp_path / "ds")


def client(root: Path, data: Path | None = None) -> tuple[TestClient, Review]:
    rv = Review(root, data, reviewer="tester")
    return TestClient(make_app(rv, token=TOKEN)), rv


def frame(c: TestClient, f: int, pid: str = PID) -> dict:
    r = c.get(f"/api/pb/{pid}/frame/{f}", headers=H)
    assert r.status_code == 200, r.text
    return r.json()


def edit(c: TestClient, f: int, op: dict, pid: str = PID, status: int = 200) -> dict:
    r = c.post(f"/api/pb/{pid}/frame/{f}/edit", headers=H, json=op)
    assert r.status_code == status, r.text
    return r.json()


# ------------------------------------------------------------------ token and paths


def test_every_route_needs_the_token(ds):
    c, _ = client(ds)
    for path in ("/", "/app.js", "/api/cohort", f"/api/pb/{PID}", f"/api/pb/{PID}/frame/0/pixels"):
        assert c.get(path).status_code == 403
        assert c.get(path, headers={"X-Octseg-Token": "wrong"}).status_code == 403
        assert c.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403
    r = c.post(f"/api/pb/{PID}/save", json={})
    assert r.status_code == 403 and "token" in r.text
    assert not (ds / "_reviewed").exists()
    page = c.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "<canvas" in page.text
    assert c.get("/api/cohort", headers=H).json()["pullbacks"][0]["id"] == PID


@pytest.mark.parametrize(
    "path",
    [
        "/api/pb/..%2F..%2Fetc%2Fpasswd",
        "/api/pb/%2Fetc%2Fpasswd/frame/0",
        "/api/pb/..%2Fds/frame/0/pixels",
        "/..%2F..%2Fetc%2Fpasswd",
        "/static/..%2Fserver.py",
        "/server.py",
        "/api/pb/synth-000%2F..%2F..%2Fx",
    ],
)
def test_traversal_is_refused(ds, path):
    c, _ = client(ds)
    r = c.get(path + ("&" if "?" in path else "?") + f"token={TOKEN}")
    assert r.status_code == 404
    assert "root:" not in r.text and "import" not in r.text


def test_symlinked_pullback_outside_the_folder_is_refused(ds, polar_ds, tmp_path):
    outside = copy_tree(polar_ds / PID, tmp_path / "elsewhere")
    os.symlink(outside, ds / "linked")
    c, _ = client(ds)
    ids = {p["id"]: p for p in c.get("/api/cohort", headers=H).json()["pullbacks"]}
    assert ids["linked"]["status"] == "error" and "outside" in ids["linked"]["error"]
    r = c.get("/api/pb/linked", headers=H)
    assert r.status_code == 422 and "outside the opened folder" in r.json()["error"]


def test_symlinked_label_file_outside_the_folder_is_refused(ds, polar_ds, tmp_path):
    outside = tmp_path / "outside_labels.npz"
    outside.write_bytes((polar_ds / PID / "labels.npz").read_bytes())
    (ds / PID / "labels.npz").unlink()
    os.symlink(outside, ds / PID / "labels.npz")
    c, _ = client(ds)
    r = c.get(f"/api/pb/{PID}", headers=H)
    assert r.status_code == 422 and "labels.npz lies outside" in r.json()["error"]


def test_manifest_ids_cannot_escape(ds, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"pullbacks": {"../ds": {"status": "done"}}}))
    c, _ = client(out)
    r = c.get("/api/pb/..%2Fds", headers=H)
    assert r.status_code in (404, 422)
    pbs = c.get("/api/cohort", headers=H).json()["pullbacks"]
    assert pbs[0]["status"] == "error"


# ------------------------------------------------------------------ bad payloads


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"op": "explode"}', 400, "'op' must be one of"),
        (b'{"op": "strut_add", "x": NaN, "y": 0}', 400, "'x' must be a finite number"),
        (b'{"op": "strut_add", "x": "1", "y": 0}', 400, "'x' must be a finite number"),
        (b'{"op": "strut_add", "y": 0}', 400, "'x' is missing"),
        (b'{"op": "lumen", "points": [[1, 0], [0, 1]]}', 400, "'points' must be a list of 3"),
        (b'{"op": "lumen", "points": [[1, 0], [0, 1], [1]]}', 400, "points[2]"),
        (
            b'{"op": "brush", "mode": "paint", "radius_mm": -1, "points": [[0, 0]]}',
            400,
            "radius_mm",
        ),
        (b'{"op": "brush", "mode": "smear", "radius_mm": 0.1, "points": [[0, 0]]}', 400, "'mode'"),
        (b'{"op": "strut_add", "x": 1e9, "y": 0}', 400, "must lie in"),
        (b'{"op": "strut_delete", "x": 0, "y": 0}', 400, "no strut within"),
        (b'{"op": "lumen", "points": [[1, 0], [1, 0], [1, 0]]}', 400, "distinct angles"),
        (b"x" * (2 << 20), 413, "request body"),
    ],
)
def test_bad_edit_payloads_get_4xx_with_a_message(ds, body, status, words):
    c, rv = client(ds)
    before = None
    r = c.post(
        f"/api/pb/{PID}/frame/3/edit",
        headers={**H, "Content-Type": "application/json"},
        content=body,
    )
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    before = rv.states.get(PID)
    if before is not None:  # nothing was changed by the refused edit
        assert before.edited == set() and before.undo == []


def test_bad_frames_and_other_requests(ds):
    c, _ = client(ds)
    assert c.get(f"/api/pb/{PID}/frame/999", headers=H).status_code == 404
    r = c.get(f"/api/pb/{PID}/frame/abc", headers=H)
    assert r.status_code == 400 and "integer" in r.json()["error"]
    assert c.get("/api/pb/nope", headers=H).json()["error"] == "unknown pullback 'nope'"
    r = c.get(f"/api/pb/{PID}/long?angle=abc", headers=H)
    assert r.status_code == 400
    r = c.post(f"/api/pb/{PID}/frame/2/reviewed", headers=H, json={"reviewed": "yes"})
    assert r.status_code == 400 and "boolean 'reviewed'" in r.json()["error"]
    r = c.post(f"/api/pb/{PID}/undo", headers=H)
    assert r.status_code == 409 and "nothing to undo" in r.json()["error"]
    r = c.post(f"/api/pb/{PID}/save", headers=H, json={})
    assert r.status_code == 400 and "no frame is marked reviewed" in r.json()["error"]
    r = c.post(f"/api/pb/{PID}/save", headers=H, json={"reviewer": "a\x00b"})
    assert r.status_code == 400 and "reviewer" in r.json()["error"]


# ------------------------------------------------------------------ edits


def _state(rv):
    return rv.states[PID]


def test_lumen_drag_refills_the_class_and_remeasures(ds):
    c, rv = client(ds)
    f = 3
    info = frame(c, f)
    pts = np.asarray(info["control_points"])
    pts[0] *= 1.25  # drag one control point 25% outwards
    out = edit(c, f, {"op": "lumen", "points": pts.tolist()})
    lab = _state(rv).labels[f]
    # the lumen class is the region under the spline r(theta), per A-line (polar labels)
    t, r = spline_radius(pts)
    a = lab.shape[0]
    ps = _state(rv).ps
    r_aline = np.interp(np.arange(a) * 2 * np.pi / a, t, r, period=2 * np.pi)
    lumen_len = (lab == LUMEN).sum(1)
    no_wire = ~(lab == GUIDEWIRE).any(1) & ~(lab == STRUT).any(1)
    expect = np.ceil(r_aline / ps)
    assert np.abs(lumen_len[no_wire] - expect[no_wire]).max() <= 1
    # re-measured by the product's geometry: equals measure_labels of the edited map ...
    again = measure_labels(_state(rv).label_file([f])).frames[0]
    assert out["row"]["lumen_area_mm2"] == pytest.approx(again["lumen_area_mm2"], rel=1e-6)
    # ... and the area under the spline within pixelisation (3%)
    assert out["row"]["lumen_area_mm2"] == pytest.approx(contour_area_mm2(pts), rel=0.03)
    assert out["row"]["lumen_area_mm2"] > info["row"]["lumen_area_mm2"] + 0.1
    assert out["edited"] and out["reviewed"]


def test_calcium_brush_and_eraser(ds):
    c, rv = client(ds)
    f = 2
    info = frame(c, f)
    assert info["row"]["calcium_arc_deg"] is None  # no calcium here in this pullback
    r_lumen = math.hypot(*info["control_points"][6])
    theta = math.atan2(info["control_points"][6][1], info["control_points"][6][0])
    spot = [(r_lumen + 0.4) * math.cos(theta), (r_lumen + 0.4) * math.sin(theta)]
    out = edit(c, f, {"op": "brush", "mode": "paint", "radius_mm": 0.2, "points": [spot]})
    g = _state(rv).grid
    lab = _state(rv).labels[f]
    near = (g.x - spot[0]) ** 2 + (g.y - spot[1]) ** 2 <= 0.2**2
    assert (lab[near] == CALCIUM).all() and (lab[~near] != CALCIUM).all()
    assert out["row"]["calcium_arc_deg"] > 5
    assert out["row"]["calcium_area_mm2"] == pytest.approx(math.pi * 0.2**2, rel=0.15)
    out = edit(c, f, {"op": "brush", "mode": "erase", "radius_mm": 0.3, "points": [spot]})
    assert not (_state(rv).labels[f] == CALCIUM).any() and out["row"]["calcium_arc_deg"] is None


def test_thickness_caliper_follows_the_calcium_and_its_edits(ds):
    """The caliper of the overlays comes with every frame view and edit: two points (mm from
    the catheter) across the calcium, as long as the measured maximum thickness, on the ray
    from the lumen centroid at its angle; none without calcium."""
    c, rv = client(ds)
    f = 2
    assert frame(c, f)["caliper"] is None  # no calcium here
    r_lumen = math.hypot(*frame(c, f)["control_points"][6])
    theta = math.atan2(frame(c, f)["control_points"][6][1], frame(c, f)["control_points"][6][0])
    spot = [(r_lumen + 0.4) * math.cos(theta), (r_lumen + 0.4) * math.sin(theta)]
    out = edit(c, f, {"op": "brush", "mode": "paint", "radius_mm": 0.2, "points": [spot]})
    (x0, y0), (x1, y1) = out["caliper"]
    row, dps = out["row"], rv.displays[PID].dps
    assert math.hypot(x1 - x0, y1 - y0) == pytest.approx(
        row["calcium_max_thickness_mm"], abs=3 * dps
    )
    mid = math.degrees(
        math.atan2(
            (y0 + y1) / 2 - row["lumen_centroid_y_mm"], (x0 + x1) / 2 - row["lumen_centroid_x_mm"]
        )
    )
    gap = abs((mid - row["calcium_max_thickness_angle_deg"] + 180) % 360 - 180)
    assert gap < 3.0
    assert frame(c, f)["caliper"] == out["caliper"]
    undone = c.post(f"/api/pb/{PID}/undo", headers=H).json()
    assert undone["caliper"] is None


def test_plaque_brush_makes_a_tcfa_and_the_tcfa_jump_finds_it(ds):
    from octseg.core.classes import FIBROUS_CAP, LIPID

    c, rv = client(ds)
    f = 2
    info = frame(c, f)
    assert info["row"]["lipid_arc_deg"] is None and info["jumps"]["tcfa"] is None
    r_l = float(np.hypot(*np.asarray(info["control_points"]).T).mean())

    def arc(r):
        return [[r * math.cos(t), r * math.sin(t)] for t in np.radians(np.arange(150, 290, 2))]

    # a fibrous-cap band over 140 degrees, then the lipid core behind a one-pixel cap
    edit(
        c,
        f,
        {
            "op": "brush",
            "mode": "paint",
            "class": "fibrous_cap",
            "radius_mm": 0.27,
            "points": arc(r_l + 0.3),
        },
    )
    edit(
        c,
        f,
        {
            "op": "brush",
            "mode": "erase",
            "class": "fibrous_cap",
            "radius_mm": 0.4,
            "points": arc(r_l + 0.45),
        },
    )
    out = edit(
        c,
        f,
        {
            "op": "brush",
            "mode": "paint",
            "class": "lipid",
            "radius_mm": 0.4,
            "points": arc(r_l + 0.45),
        },
    )
    lab = _state(rv).labels[f]
    assert (lab == LIPID).sum() > 100 and (lab == FIBROUS_CAP).sum() > 10
    row = out["row"]
    assert 120 < row["lipid_arc_deg"] < 160
    assert row["cap_min_thickness_um"] < 65 and row["tcfa"]
    assert out["jumps"]["tcfa"] == f
    bad = {"op": "brush", "mode": "paint", "class": "stent", "radius_mm": 0.1, "points": [[1, 1]]}
    assert "'class' must be one of" in edit(c, f, bad, status=400)["error"]


def test_struts_add_move_delete(ds):
    c, rv = client(ds)
    f = 12  # inside the stent
    info = frame(c, f)
    n0 = info["row"]["n_struts"]
    assert n0 == len(info["struts"]) > 3
    x, y = info["struts"][0]
    out = edit(c, f, {"op": "strut_delete", "x": x, "y": y})
    assert out["row"]["n_struts"] == n0 - 1
    assert min(math.hypot(x - a, y - b) for a, b in out["struts"]) > 0.1
    out = edit(c, f, {"op": "strut_add", "x": x, "y": y})
    assert out["row"]["n_struts"] == n0
    assert min(math.hypot(x - a, y - b) for a, b in out["struts"]) < 0.05
    dst = [x * 1.2, y * 1.2]
    out = edit(c, f, {"op": "strut_move", "src": [x, y], "dst": dst})
    assert out["row"]["n_struts"] == n0
    assert min(math.hypot(dst[0] - a, dst[1] - b) for a, b in out["struts"]) < 0.05


def test_guidewire_sector(ds):
    c, rv = client(ds)
    f = 4
    edit(c, f, {"op": "guidewire", "start_deg": 90, "end_deg": 120, "radius_mm": 0.5})
    st = _state(rv)
    lab, g = st.labels[f], st.grid
    deg = np.degrees(g.theta)
    gw = lab == GUIDEWIRE
    assert gw.any()
    assert (deg[gw] >= 89).all() and (deg[gw] <= 121).all() and (g.r[gw] >= 0.5 - 1e-6).all()
    edit(c, f, {"op": "guidewire", "start_deg": 0, "end_deg": 0, "radius_mm": 0.5})
    assert not (st.labels[f] == GUIDEWIRE).any()


def test_undo_redo_and_reviewed_mark(ds):
    c, rv = client(ds)
    f = 6
    original = None
    frame(c, f)
    st = _state(rv)
    original = st.labels[f].copy()
    edit(c, f, {"op": "brush", "mode": "paint", "radius_mm": 0.3, "points": [[2.2, 0.0]]})
    edited = st.labels[f].copy()
    assert not np.array_equal(original, edited)
    r = c.post(f"/api/pb/{PID}/undo", headers=H).json()
    assert np.array_equal(st.labels[f], original) and not r["reviewed"] and not r["edited"]
    r = c.post(f"/api/pb/{PID}/redo", headers=H).json()
    assert np.array_equal(st.labels[f], edited) and r["reviewed"] and r["edited"]
    r = c.post(f"/api/pb/{PID}/frame/{f}/reviewed", headers=H, json={"reviewed": False}).json()
    assert not r["reviewed"]
    r = c.post(f"/api/pb/{PID}/frame/9/reviewed", headers=H, json={"reviewed": True}).json()
    assert r["reviewed"] and not r["edited"]
    assert sorted(st.reviewed) == [9]


def test_jumps_follow_the_measurements(ds):
    c, rv = client(ds)
    meta = c.get(f"/api/pb/{PID}", headers=H).json()
    areas = [(r["lumen_area_mm2"], r["frame"]) for r in meta["rows"] if r and r["lumen_area_mm2"]]
    assert meta["jumps"]["mla"] == min(areas)[1]
    arcs = [(r["calcium_arc_deg"], r["frame"]) for r in meta["rows"] if r and r["calcium_arc_deg"]]
    assert meta["jumps"]["max_calcium_arc"] == max(arcs)[1]
    stent = [(r["stent_area_mm2"], r["frame"]) for r in meta["rows"] if r and r["stent_area_mm2"]]
    assert meta["jumps"]["msa"] == min(stent)[1]
    # shrinking the lumen of a frame far below the MLA moves the MLA jump there
    pts = (np.asarray(frame(c, 1)["control_points"]) * 0.5).tolist()
    out = edit(c, 1, {"op": "lumen", "points": pts})
    assert out["jumps"]["mla"] == 1


# ------------------------------------------------------------------ display


def test_polar_display_is_octseg_polar_scan_conversion(ds):
    from octseg.core.polar import polar_to_cartesian

    c, rv = client(ds)
    meta = c.get(f"/api/pb/{PID}", headers=H).json()
    d = meta["display"]
    raw = c.get(f"/api/pb/{PID}/frame/7/pixels", headers=H).content
    n = d["width"] * d["height"]
    assert len(raw) == 2 * n
    img = np.frombuffer(raw[:n], np.uint8).reshape(d["height"], d["width"])
    lab = np.frombuffer(raw[n:], np.uint8).reshape(d["height"], d["width"])
    st = _state(rv)
    kw = dict(
        out_size=(d["height"], d["width"]),
        polar_spacing_mm=st.ps,
        cart_spacing_mm=d["dps"],
        mode="nearest",
    )
    want_img = polar_to_cartesian(torch.from_numpy(st.image[7][None]), **kw)[0].numpy()
    want_lab = polar_to_cartesian(torch.from_numpy(st.labels[7][None]), **kw)[0].numpy()
    assert np.mean(img == want_img) > 0.999 and np.mean(lab == want_lab) > 0.999


def test_cartesian_pullback_edits_land_on_the_right_pixels(cart_ds, tmp_path):
    c, rv = client(copy_tree(cart_ds, tmp_path / "ds"))
    meta = c.get(f"/api/pb/{PID}", headers=H).json()
    st = _state(rv)
    assert meta["space"] == "cartesian" and meta["display"]["width"] == st.labels.shape[2]
    raw = c.get(f"/api/pb/{PID}/frame/5/pixels", headers=H).content
    assert raw == st.image[5].tobytes() + st.labels[5].tobytes()
    x, y = 2.0, -1.0  # mm from the catheter centre
    edit(c, 5, {"op": "brush", "mode": "paint", "radius_mm": 0.05, "points": [[x, y]]})
    cy, cx = st.center
    row, col = round(cy + y / st.ps), round(cx + x / st.ps)
    assert st.labels[5][row, col] == CALCIUM
    # longitudinal cut at 0 degrees = the image row through the catheter centre
    r = c.get(f"/api/pb/{PID}/long?angle=0", headers=H)
    n, f = int(r.headers["X-Samples"]), int(r.headers["X-Frames"])
    cut = np.frombuffer(r.content[: n * f], np.uint8).reshape(n, f)
    assert np.array_equal(cut[:, 5], st.image[5][round(cy), :n])


# ------------------------------------------------------------------ saving


def _edit_and_save(c, rv, reviewer="tester"):
    pts = np.asarray(frame(c, 3)["control_points"]) * 1.1
    edit(c, 3, {"op": "lumen", "points": pts.tolist()})
    c.post(f"/api/pb/{PID}/frame/10/reviewed", headers=H, json={"reviewed": True})
    r = c.post(f"/api/pb/{PID}/save", headers=H, json={"reviewer": reviewer})
    assert r.status_code == 200, r.text
    return r.json()


def test_save_writes_a_training_ready_pullback_with_provenance(ds):
    from octseg.evaluate.inputs import load_manual
    from octseg.io.dataset import list_pullbacks, verify_dataset
    from octseg.train.data import class_lut, load_pullback

    (ds / PID / "image.npz").chmod(0o444)
    c, rv = client(ds)
    prov = _edit_and_save(c, rv, reviewer="Dr. Test")
    assert (ds / PID / "image.npz").stat().st_mode & 0o777 == 0o444
    st = _state(rv)
    out = ds / "_reviewed" / PID
    lf = load_labels(out / "labels.npz")
    assert lf.frames.tolist() == [3, 10]  # reviewed frames only: sparse labels
    assert np.array_equal(lf.labels, st.labels[[3, 10]])
    assert lf.space == "polar" and lf.pixel_spacing_mm == st.ps and lf.frame_spacing_mm == st.fs
    assert verify_dataset(ds / "_reviewed") == []
    # train.py's loader takes the reviewed frames as its only targets
    entry = list_pullbacks(ds / "_reviewed")[0]
    grid = {"n_alines": 32, "n_samples": 32, "spacing_mm": 0.15}
    assert load_pullback(entry, grid, 1, class_lut([0, 1, 2, 3, 4])).label_frames.tolist() == [
        3,
        10,
    ]
    # evaluate.py reads it as the manual side: the re-measured frames
    manual = load_manual(ds / "_reviewed")[PID]
    by_frame = {int(r["frame"]): r for r in manual.frames}
    assert sorted(by_frame) == [3, 10]
    assert by_frame[3]["lumen_area_mm2"] == pytest.approx(st.rows[3]["lumen_area_mm2"], rel=1e-6)
    # provenance
    saved = json.loads((out / "review.json").read_text())
    assert saved == {k: v for k, v in prov.items() if k not in ("folder", "warnings")}
    assert saved["frames_reviewed"] == [3, 10] and saved["frames_edited"] == [3]
    assert saved["reviewer"] == "Dr. Test" and saved["edits"] == {"lumen": 1}
    assert saved["opened_layout"] == "dataset" and saved["pullback_id"] == PID
    assert saved["saved_at"].endswith("+00:00")
    assert not list(out.glob(".tmp-*"))
    # the image beside the labels is the source's (a hard link leaves the source's mode alone)
    assert (out / "image.npz").read_bytes() == (ds / PID / "image.npz").read_bytes()
    # the whole corrected pullback, re-measured with its report, in a separate tree
    whole = ds / "_corrected" / PID
    lf_all = load_labels(whole / "labels.npz")
    assert lf_all.frame_index is None and np.array_equal(lf_all.labels, st.labels)
    from octseg.geometry.tables import read_csv

    rows = {r["frame"]: r for r in read_csv(whole / "frames.csv")}
    assert len(rows) == st.n_frames
    assert rows[3]["lumen_area_mm2"] == pytest.approx(st.rows[3]["lumen_area_mm2"], rel=1e-6)
    assert PID in (whole / "report.html").read_text() and prov["warnings"] == []
    assert json.loads((whole / "review.json").read_text())["frames_edited"] == [3]
    # the original dataset labels are untouched
    assert load_labels(ds / PID / "labels.npz").n_frames == st.n_frames


def test_reopening_restores_the_review(ds):
    c, rv = client(ds)
    _edit_and_save(c, rv)
    edited = _state(rv).labels[3].copy()
    c2, rv2 = client(ds)
    info = frame(c2, 3)
    assert info["reviewed"] and info["edited"]
    assert np.array_equal(_state(rv2).labels[3], edited)
    assert sorted(_state(rv2).reviewed) == [3, 10]


def test_concurrent_saves_are_serialised(ds):
    c, rv = client(ds)
    _edit_and_save(c, rv)
    errors = []

    def save():
        try:
            r = c.post(f"/api/pb/{PID}/save", headers=H, json={})
            assert r.status_code == 200, r.text
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    out = ds / "_reviewed" / PID
    assert load_labels(out / "labels.npz").frames.tolist() == [3, 10]
    assert json.loads((out / "review.json").read_text())["frames_reviewed"] == [3, 10]
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


# ------------------------------------------------------------------ inference layout


def test_inference_output_with_a_broken_and_a_failed_pullback(ds, tmp_path):
    out = inference_output(ds, tmp_path / "out")
    c, rv = client(out)
    pbs = {p["id"]: p for p in c.get("/api/cohort", headers=H).json()["pullbacks"]}
    assert pbs["gone"]["status"] == "failed" and "not a recognised image" in pbs["gone"]["error"]
    r = c.get("/api/pb/gone", headers=H)
    assert r.status_code == 422 and "not a recognised image" in r.json()["error"]
    r = c.get("/api/pb/broken", headers=H)
    assert r.status_code == 422 and "labels.npz" in r.json()["error"]
    assert c.get("/api/cohort", headers=H).json()["pullbacks"][2]["status"] == "error"
    # the good pullback still works: the model's too-small lumen on frame 5 is corrected
    info = frame(c, 5)
    wrong = info["row"]["lumen_area_mm2"]
    truth = measure_labels(load_labels(ds / PID / "labels.npz")).frames[5]["lumen_area_mm2"]
    assert wrong < 0.8 * truth
    from octseg.review.edits import control_points

    good = control_points(load_labels(ds / PID / "labels.npz").labels[5], _state(rv).grid)
    fixed = edit(c, 5, {"op": "lumen", "points": good})
    assert fixed["row"]["lumen_area_mm2"] == pytest.approx(truth, rel=0.05)
    prov = c.post(f"/api/pb/{PID}/save", headers=H, json={}).json()
    assert prov["model"] == {"checkpoint": "runs/best.ckpt", "fingerprint": "f00d"}
    assert prov["opened_layout"] == "inference" and prov["reviewer"] == "tester"
    assert (out / "_reviewed" / PID / "image.npz").is_file()
    assert load_labels(out / "_reviewed" / PID / "labels.npz").frames.tolist() == [5]
    # the inference outputs themselves are untouched
    assert load_labels(out / PID / "labels.npz").frames.tolist() == list(range(24))


def test_data_option_supplies_the_images(ds, tmp_path):
    out = inference_output(ds, tmp_path / "out", broken=False)
    (out / PID / "done.json").write_text("{}")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["pullbacks"][PID].pop("source")
    (out / "manifest.json").write_text(json.dumps(manifest))
    c, _ = client(out)
    r = c.get(f"/api/pb/{PID}", headers=H)
    assert r.status_code == 422 and "--data" in r.json()["error"]
    c, _ = client(out, data=ds)
    assert c.get(f"/api/pb/{PID}", headers=H).json()["n_frames"] == 24


def _infer(ds: Path, tmp_path: Path, anonymize: bool = False) -> Path:
    """infer.py's own output: an oracle network on an image whose grey values encode the
    synthetic labels."""
    from model_helpers import oracle_predictor, quiet_settings

    from octseg.core import atomic
    from octseg.infer.pipeline import run_inference

    truth = load_labels(ds / PID / "labels.npz")
    src = tmp_path / "in" / "case.npz"
    src.parent.mkdir()
    frames = np.round(truth.labels.astype(np.float32) * (255 / 4)).astype(np.uint8)
    atomic.save_npz(
        src,
        frames=frames,
        space=np.array("polar"),
        pixel_spacing_mm=truth.pixel_spacing_mm,
        frame_spacing_mm=truth.frame_spacing_mm,
    )
    out = tmp_path / "out"
    a, r = truth.labels.shape[1:]
    grid = {"n_alines": a, "n_samples": r, "spacing_mm": truth.pixel_spacing_mm}
    cfg = quiet_settings(src, out, anonymize_ids=anonymize)
    assert run_inference(cfg, oracle_predictor(grid))["manifest"]["n_done"] == 1
    return out


@pytest.mark.parametrize("anonymize", [False, True])
def test_real_infer_output(ds, tmp_path, anonymize):
    """infer.py's output opens with the image found from done.json or, with anonymised ids,
    ids_private.csv."""
    out = _infer(ds, tmp_path, anonymize)
    truth = load_labels(ds / PID / "labels.npz")
    pid = "pullback-0001" if anonymize else "case"
    c, rv = client(out)
    assert [p["id"] for p in c.get("/api/cohort", headers=H).json()["pullbacks"]] == [pid]
    meta = c.get(f"/api/pb/{pid}", headers=H).json()
    assert meta["n_frames"] == truth.n_frames and meta["space"] == "polar"
    # the page's numbers are the inference tables' numbers (same geometry, same labels)
    from octseg.geometry.tables import read_csv

    table = {r["frame"]: r for r in read_csv(out / pid / "frames.csv")}
    for row in meta["rows"]:
        assert row["lumen_area_mm2"] == pytest.approx(
            table[row["frame"]]["lumen_area_mm2"], rel=1e-4
        )
    c.post(f"/api/pb/{pid}/frame/4/reviewed", headers=H, json={"reviewed": True})
    prov = c.post(f"/api/pb/{pid}/save", headers=H, json={}).json()
    assert prov["frames_reviewed"] == [4] and prov["model"]["checkpoint"] == "oracle"
    assert (
        prov["model"]["fingerprint"]
        == json.loads((out / pid / "done.json").read_text())["fingerprint"]
    )
    assert "case" not in json.dumps(prov) or not anonymize  # no source name in the provenance


def test_evaluate_takes_the_review_as_the_manual_side(ds, tmp_path):
    from octseg.cli import main
    from octseg.geometry.tables import read_csv

    out = _infer(ds, tmp_path)
    c, rv = client(out)
    for f in (4, 10, 20):
        c.post(f"/api/pb/case/frame/{f}/reviewed", headers=H, json={"reviewed": True})
    pts = np.asarray(frame(c, 10, pid="case")["control_points"]) * 1.1
    fixed = edit(c, 10, {"op": "lumen", "points": pts.tolist()}, pid="case")["row"]
    assert c.post("/api/pb/case/save", headers=H, json={}).status_code == 200
    args = ["--n-bootstrap", "100", "--no-plots", "--quiet", "--no-segmentation"]
    ev = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--auto",
                str(out),
                "--manual",
                str(out / "_reviewed"),
                "--out",
                str(ev),
                *args,
            ]
        )
        == 0
    )
    matched = {
        r["frame"]: r for r in read_csv(ev / "frames_matched.csv") if r["match"] == "matched"
    }
    assert sorted(matched) == [4, 10, 20]  # the reviewed frames are the manual side
    auto = {r["frame"]: r for r in read_csv(out / "case" / "frames.csv")}
    assert matched[10]["manual_lumen_area_mm2"] == pytest.approx(fixed["lumen_area_mm2"], rel=1e-4)
    assert matched[10]["auto_lumen_area_mm2"] == pytest.approx(auto[10]["lumen_area_mm2"], rel=1e-4)
    assert matched[4]["manual_lumen_area_mm2"] == pytest.approx(auto[4]["lumen_area_mm2"], rel=1e-4)


def test_review_measures_with_the_run_geometry(ds, tmp_path):
    """The page's numbers come from the geometry settings the inference run recorded in its
    manifest (here 32 contour rays), not from the defaults; --geometry-config overrides them."""
    from model_helpers import oracle_predictor, quiet_settings

    from octseg.geometry.tables import read_csv
    from octseg.infer.pipeline import run_inference

    base = _infer(ds, tmp_path)  # writes in/case.npz, the oracle's input
    out = tmp_path / "coarse"
    truth = load_labels(ds / PID / "labels.npz")
    a, r = truth.labels.shape[1:]
    grid = {"n_alines": a, "n_samples": r, "spacing_mm": truth.pixel_spacing_mm}
    cfg = quiet_settings(tmp_path / "in" / "case.npz", out, geometry={"n_rays": 32})
    run_inference(cfg, oracle_predictor(grid))
    assert json.loads((out / "manifest.json").read_text())["geometry"]["n_rays"] == 32
    key = "calcium_arc_deg"  # counted on rays about the centroid: 11.25 deg steps with 32
    coarse = {row["frame"]: row[key] for row in read_csv(out / "case" / "frames.csv")}
    fine = {row["frame"]: row[key] for row in read_csv(base / "case" / "frames.csv")}
    arcs = [f for f in fine if fine[f] is not None]
    assert arcs and max(abs(coarse[f] - fine[f]) for f in arcs) > 1.0  # the setting shows
    c, rv = client(out)
    rows = c.get("/api/pb/case", headers=H).json()["rows"]
    assert rv.geometry.n_rays == 32 and rv.geometry_source.endswith("manifest.json")
    for row in rows:
        if row["frame"] in arcs:
            assert row[key] == pytest.approx(coarse[row["frame"]], abs=1e-3)
    yaml = tmp_path / "g.yaml"
    yaml.write_text("n_rays: 720\n")
    other = Review(out, reviewer="tester", geometry=yaml)
    assert other.geometry.n_rays == 720 and other.geometry_source == str(yaml)
