"""``octseg review`` in a real headless browser (Debian's chromium + chromium-driver, Selenium):
open a synthetic inference output, step frames, drag a lumen control point, paint calcium,
delete a strut, save; check the saved labels, the re-measured area and the provenance."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from review_helpers import PID, inference_output, synth_dataset

from octseg.core.classes import CALCIUM
from octseg.geometry import measure_labels
from octseg.io.labels import load_labels

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    import importlib.util

    if not (CHROMIUM.exists() or shutil.which("chromium")):
        return "Debian chromium is not installed (apt-get install chromium chromium-driver)"
    if not (DRIVER.exists() or shutil.which("chromedriver")):
        return "chromium-driver is not installed (apt-get install chromium-driver)"
    for mod in ("selenium", "uvicorn"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install -e '.[dev]')"
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(_missing() is not None, reason=str(_missing())),
]


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument("--window-size=1200,1000")
    service = Service(str(DRIVER if DRIVER.exists() else shutil.which("chromedriver")))
    return webdriver.Chrome(service=service, options=opts)


def wait_for(d, js: str, timeout: float = 20.0):
    """Poll ``js`` (an expression) until it is truthy and the page has no request in flight."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        val = d.execute_script(f"return window.app && app.busy === 0 && !app.drag && ({js})")
        if val:
            return val
        time.sleep(0.05)
    err = d.execute_script("return window.app && app.error")
    raise AssertionError(f"timed out waiting for {js!r} (page error: {err})")


def canvas_offset(d, point_mm) -> tuple[float, float]:
    """Offset (CSS px, from the canvas centre, as Selenium wants) of a point in mm."""
    return tuple(
        d.execute_script(
            """const [u, v] = [app.meta.display.cx + arguments[0][0] / app.meta.display.dps,
                               app.meta.display.cy + arguments[0][1] / app.meta.display.dps];
               const cv = document.getElementById('xs'), b = cv.getBoundingClientRect();
               return [u * b.width / cv.width - b.width / 2, v * b.height / cv.height - b.height / 2];""",
            point_mm,
        )
    )


@pytest.fixture
def served(tmp_path):
    from octseg.review.server import Review, Served, make_app

    ds = synth_dataset(tmp_path / "ds")
    out = inference_output(ds, tmp_path / "out", broken=False)
    review = Review(out, reviewer="browser-test")
    srv = Served(make_app(review)).start()
    yield srv, review, out
    srv.stop()


def test_review_in_headless_chromium(served):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    srv, review, out = served
    d = _driver()
    try:
        d.get(srv.url)
        wait_for(d, "app.info && app.info.frame === 0")
        xs = d.find_element(By.ID, "xs")
        body = d.find_element(By.TAG_NAME, "body")
        # step frames: arrow keys and the mouse wheel
        for _ in range(4):
            body.send_keys(Keys.ARROW_RIGHT)
        wait_for(d, "app.info.frame === 4")
        ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(xs), 0, 120).perform()
        assert wait_for(d, "app.info.frame === 5 && app.info.row")
        before = d.execute_script("return app.info.row.lumen_area_mm2")

        # drag a lumen control point 0.8 mm outwards (frame 5 has the model's too small lumen)
        p = d.execute_script("return app.info.control_points[0]")
        r = float(np.hypot(*p))
        dst = [p[0] * (r + 0.8) / r, p[1] * (r + 0.8) / r]
        (ox, oy), (tx, ty) = canvas_offset(d, p), canvas_offset(d, dst)
        chain = ActionChains(d).move_to_element_with_offset(xs, int(ox), int(oy)).click_and_hold()
        for k in range(1, 5):
            chain.move_by_offset(
                int((tx - ox) / 4 * k) - int((tx - ox) / 4 * (k - 1)),
                int((ty - oy) / 4 * k) - int((ty - oy) / 4 * (k - 1)),
            )
        chain.release().perform()
        wait_for(d, "app.timings.edit.length === 1")
        after = d.execute_script("return app.info.row.lumen_area_mm2")
        assert after > before + 0.1
        # the contour now passes where the point was dropped (within 0.1 mm: a CSS pixel is 0.02)
        moved = d.execute_script("return app.info.control_points[0]")
        assert abs(float(np.hypot(*moved)) - (r + 0.8)) < 0.1
        shown = d.find_element(By.ID, "numbers").text
        assert f"{after:.2f}" in shown

        # paint calcium: a stroke 0.5 mm outside the lumen
        d.find_element(By.CSS_SELECTOR, "input[value=paint]").find_element(By.XPATH, "..").click()
        q = d.execute_script("return app.info.control_points[12]")
        rq = float(np.hypot(*q))
        a = [q[0] * (rq + 0.5) / rq, q[1] * (rq + 0.5) / rq]
        b = [q[0] * (rq + 0.9) / rq, q[1] * (rq + 0.9) / rq]
        (ax, ay), (bx, by) = canvas_offset(d, a), canvas_offset(d, b)
        ActionChains(d).move_to_element_with_offset(
            xs, int(ax), int(ay)
        ).click_and_hold().move_by_offset(int(bx - ax), int(by - ay)).release().perform()
        wait_for(d, "app.timings.edit.length === 2")
        assert d.execute_script("return app.info.row.calcium_arc_deg") > 5
        assert (review.states[PID].labels[5] == CALCIUM).sum() > 20
        # the thickness caliper is drawn across it: white at its end points
        ends = d.execute_script(
            "const ctx = document.getElementById('xs').getContext('2d');"
            "return app.info.caliper.map(toPx).map(([u, v]) =>"
            " Array.from(ctx.getImageData(Math.floor(u), Math.floor(v), 1, 1).data));"
        )
        assert all(min(px[:3]) > 200 for px in ends), ends

        # delete a strut in a stented frame (arrow up = 10 frames)
        body.send_keys(Keys.ARROW_UP)
        wait_for(d, "app.info.frame === 15")
        n_struts = d.execute_script("return app.info.row.n_struts")
        assert n_struts > 3
        d.find_element(By.CSS_SELECTOR, "input[value=strut_delete]").find_element(
            By.XPATH, ".."
        ).click()
        s = d.execute_script("return app.info.struts[0]")
        sx, sy = canvas_offset(d, s)
        ActionChains(d).move_to_element_with_offset(xs, int(sx), int(sy)).click().perform()
        wait_for(d, "app.timings.edit.length === 3")
        assert d.execute_script("return app.info.row.n_struts") == n_struts - 1

        # save
        d.find_element(By.ID, "save").click()
        wait_for(d, "app.saved")
        assert "saved 2 reviewed frames" in d.find_element(By.ID, "status").text
        assert d.execute_script("return app.error") is None
        timings = d.execute_script("return app.timings")
    finally:
        d.quit()

    saved = out / "_reviewed" / PID
    lf = load_labels(saved / "labels.npz")
    assert lf.frames.tolist() == [5, 15]
    st = review.states[PID]
    assert np.array_equal(lf.labels, st.labels[[5, 15]])
    assert (lf.labels[0] == CALCIUM).sum() > 20
    remeasured = measure_labels(lf).frames
    assert remeasured[0]["lumen_area_mm2"] == pytest.approx(after, rel=1e-6)
    assert remeasured[1]["n_struts"] == n_struts - 1
    prov = json.loads((saved / "review.json").read_text())
    assert prov["frames_reviewed"] == [5, 15] and prov["frames_edited"] == [5, 15]
    assert prov["edits"] == {"brush": 1, "lumen": 1, "strut_delete": 1}
    assert prov["reviewer"] == "browser-test" and prov["model"]["fingerprint"] == "f00d"
    assert len(timings["frame"]) >= 6 and len(timings["edit"]) == 3
