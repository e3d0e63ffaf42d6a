"""Timings of ``octseg review``: frame switch and re-measure after an edit, on 1024 x 1024 frames.

Two cases from one ``octseg synth`` pullback (default frame size, --cartesian-size 1024):
the Cartesian 1024 x 1024 frames, and the polar 504 x 968 frames (shown on a 1024 x 1024 display
grid). For each, a real server (uvicorn on 127.0.0.1) is timed over HTTP:

- ``switch``: one frame step = GET pixels (image + labels on the display grid) + GET frame info
  (control points, contour, struts, measurements), first visit (server cache cold) and revisit;
- ``edit``: POST of an edit (lumen drag, calcium stroke, strut delete) -> labels changed, frame
  re-measured by ``octseg.geometry.measure_labels``, new frame info back.

``--browser`` also times the same in headless chromium (what the page measures: request(s),
decoding, tinting and drawing), and ``--screenshots DIR`` writes the README/docs images.

    .venv/bin/python benchmarks/review.py --browser --json benchmarks/results/review.json
    .venv/bin/python benchmarks/review.py --screenshots docs/images --skip-http
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ID = "synth-000"


def make_data(work: Path, n_frames: int) -> dict[str, Path]:
    """work/polar and work/cartesian: one-pullback datasets (made once, then reused)."""
    src = work / "synth"
    if not (src / ID / "image_cartesian.npz").exists():
        from octseg.datasets.synth.cohort import generate_cohort, grid_from

        grid = grid_from("default", n_frames=n_frames)
        generate_cohort(src, 1, 0, grid, cartesian=True, cart_size=1024, progress=False)
    out = {}
    for case, (img, lab) in {
        "cartesian": ("image_cartesian.npz", "labels_cartesian.npz"),
        "polar": ("image.npz", "labels.npz"),
    }.items():
        d = work / case / ID
        if not (d / "labels.npz").exists():
            d.mkdir(parents=True, exist_ok=True)
            for a, b in ((img, "image.npz"), (lab, "labels.npz")):
                if not (d / b).exists():
                    os.link(src / ID / a, d / b)
        out[case] = work / case
    return out


def stats(ms: list) -> dict[str, float]:
    """Wall-clock median / p90 / max (ms); with (wall, cpu) pairs also the median CPU time of
    this process (server and client threads together: the work, whatever the machine's load)."""
    wall = [m[0] if isinstance(m, tuple) else m for m in ms]
    out = {
        "n": len(wall),
        "median_ms": round(statistics.median(wall), 1),
        "p90_ms": round(float(np.percentile(wall, 90)), 1),
        "max_ms": round(max(wall), 1),
    }
    if ms and isinstance(ms[0], tuple):
        out["cpu_median_ms"] = round(statistics.median(m[1] for m in ms), 1)
    return out


def timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000


def http_case(url: str, n_frames: int, steps: int) -> dict[str, dict]:
    import httpx

    base, token = url.split("/?token=")
    c = httpx.Client(base_url=base, headers={"X-Octseg-Token": token}, timeout=600)
    res: dict[str, dict] = {}
    t = time.perf_counter()
    c.get(f"/api/pb/{ID}").raise_for_status()
    res["open_s"] = round(time.perf_counter() - t, 2)
    frames = list(range(min(steps, n_frames)))

    def switch(f: int) -> None:
        c.get(f"/api/pb/{ID}/frame/{f}/pixels").raise_for_status()
        c.get(f"/api/pb/{ID}/frame/{f}").raise_for_status()

    res["switch_first_visit"] = stats([timed(lambda f=f: switch(f)) for f in frames])
    res["switch_revisit"] = stats([timed(lambda f=f: switch(f)) for f in frames])
    res["longitudinal"] = stats(
        [
            timed(lambda a=a: c.get(f"/api/pb/{ID}/long?angle={a}").raise_for_status())
            for a in range(0, 180, 20)
        ]
    )
    edits: dict[str, list[float]] = {"lumen": [], "brush": [], "strut_delete": []}
    for f in range(n_frames // 4, n_frames // 4 + 10):
        info = c.get(f"/api/pb/{ID}/frame/{f}").json()
        pts = (np.asarray(info["control_points"]) * 1.05).tolist()
        ops = {"lumen": {"op": "lumen", "points": pts}}
        p = info["control_points"][5]
        r = float(np.hypot(*p))
        stroke = [
            [p[0] * (r + 0.3 + 0.05 * k) / r, p[1] * (r + 0.3 + 0.05 * k) / r] for k in range(8)
        ]
        ops["brush"] = {"op": "brush", "mode": "paint", "radius_mm": 0.15, "points": stroke}
        if info["struts"]:
            x, y = info["struts"][0]
            ops["strut_delete"] = {"op": "strut_delete", "x": x, "y": y}
        for name, op in ops.items():
            edits[name].append(
                timed(
                    lambda op=op, f=f: c.post(
                        f"/api/pb/{ID}/frame/{f}/edit", json=op
                    ).raise_for_status()
                )
            )
    res.update({f"edit_{k}": stats(v) for k, v in edits.items() if v})
    return res


def chromium(window: str = "1220,1080"):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={window}")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait(d, js: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if d.execute_script(f"return window.app && app.busy === 0 && ({js})"):
            return
        time.sleep(0.01)
    raise TimeoutError(js)


def browser_case(url: str, steps: int) -> dict[str, dict]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = chromium()
    try:
        d.get(url)
        wait(d, "app.info && app.info.frame === 0")
        body = d.find_element(By.TAG_NAME, "body")
        for k in range(1, steps + 1):
            body.send_keys(Keys.ARROW_RIGHT)
            wait(d, f"app.info.frame === {k}")
        for k in range(steps - 1, -1, -1):
            body.send_keys(Keys.ARROW_LEFT)
            wait(d, f"app.info.frame === {k}")
        for k in range(10):
            d.execute_script(
                "sendEdit({op: 'lumen', points: app.info.control_points.map(p => [p[0] * 1.03, p[1] * 1.03])})"
            )
            wait(d, f"app.timings.edit.length === {k + 1}")
        t = d.execute_script("return app.timings")
    finally:
        d.quit()
    return {
        "page_switch_forward": stats(t["frame"][1 : steps + 1]),
        "page_switch_back": stats(t["frame"][steps + 1 : 2 * steps + 1]),
        "page_edit_lumen": stats(t["edit"]),
    }


def screenshots(url: str, out: Path) -> None:
    """review_app.png (the app on the max-calcium-arc frame) and review_demo.gif (step frames,
    drag a lumen point, paint calcium)."""
    import tempfile

    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="review-shots-"))
    d = chromium()
    shots: list[Path] = []

    def shot(name: str) -> None:
        p = tmp / name
        d.save_screenshot(str(p))
        shots.append(p)

    def offset(pt):
        return d.execute_script(
            """const [u, v] = [app.meta.display.cx + arguments[0][0] / app.meta.display.dps,
                               app.meta.display.cy + arguments[0][1] / app.meta.display.dps];
               const cv = document.getElementById('xs'), b = cv.getBoundingClientRect();
               return [u * b.width / cv.width - b.width / 2, v * b.height / cv.height - b.height / 2];""",
            pt,
        )

    try:
        d.get(url)
        wait(d, "app.info")
        d.find_element(By.CSS_SELECTOR, "[data-jump=max_calcium_arc]").click()
        wait(d, "app.info.frame === app.meta.jumps.max_calcium_arc")
        d.execute_script(
            "const a = document.getElementById('angle'); a.value = 40; a.dispatchEvent(new Event('input'));"
        )
        wait(d, "app.angle === 40")
        d.save_screenshot(str(out / "review_app.png"))
        body = d.find_element(By.TAG_NAME, "body")
        shots.clear()
        for _ in range(3):
            body.send_keys(Keys.ARROW_RIGHT)
            wait(d, "true")
            shot(f"review_step_{len(shots) + 1}.png")
        xs = d.find_element(By.ID, "xs")
        p = d.execute_script("return app.info.control_points[3]")
        r = float(np.hypot(*p))
        q = [p[0] * (r + 0.6) / r, p[1] * (r + 0.6) / r]
        (ox, oy), (tx, ty) = offset(p), offset(q)
        ActionChains(d).move_to_element_with_offset(
            xs, int(ox), int(oy)
        ).click_and_hold().move_by_offset(int((tx - ox) / 2), int((ty - oy) / 2)).perform()
        shot(f"review_step_{len(shots) + 1}.png")
        ActionChains(d).move_by_offset(
            int(tx - ox) - int((tx - ox) / 2), int(ty - oy) - int((ty - oy) / 2)
        ).release().perform()
        wait(d, "app.timings.edit.length === 1")
        shot(f"review_step_{len(shots) + 1}.png")
        d.find_element(By.CSS_SELECTOR, "input[value=paint]").find_element(By.XPATH, "..").click()
        p = d.execute_script("return app.info.control_points[22]")
        r = float(np.hypot(*p))
        a, b = (
            [p[0] * (r + 0.4) / r, p[1] * (r + 0.4) / r],
            [p[0] * (r + 0.9) / r, p[1] * (r + 0.9) / r],
        )
        (ax, ay), (bx, by) = offset(a), offset(b)
        ActionChains(d).move_to_element_with_offset(
            xs, int(ax), int(ay)
        ).click_and_hold().move_by_offset(int(bx - ax), int(by - ay)).release().perform()
        wait(d, "app.timings.edit.length === 2")
        shot(f"review_step_{len(shots) + 1}.png")
    finally:
        d.quit()
    frames = [Image.open(p).convert("RGB").resize((610, 540)) for p in shots]
    frames[0].save(
        out / "review_demo.gif", save_all=True, append_images=frames[1:], duration=900, loop=0
    )
    for p in shots:
        p.unlink()
    tmp.rmdir()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/octseg-review-bench", help="data folder (made once)")
    ap.add_argument("--frames", type=int, default=60, help="frames of the synthetic pullback")
    ap.add_argument("--steps", type=int, default=30, help="frame steps timed per case")
    ap.add_argument("--cases", default="cartesian,polar")
    ap.add_argument(
        "--browser", action="store_true", help="also time the page in headless chromium"
    )
    ap.add_argument("--screenshots", help="write review_app.png and review_demo.gif here")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    import torch

    from octseg.review.server import Review, Served, make_app

    torch.set_num_threads(1)  # as `octseg review` runs
    data = make_data(Path(args.work), args.frames)
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}",
        "load_average_1min_before": os.getloadavg()[0],
        "cases": {},
    }
    for case in args.cases.split(","):
        rv = Review(data[case], reviewer="benchmark")
        srv = Served(make_app(rv)).start()
        try:
            res = {} if args.skip_http else http_case(srv.url, args.frames, args.steps)
            if args.browser:
                res.update(browser_case(srv.url, args.steps))
            if args.screenshots and case == "cartesian":
                screenshots(srv.url, Path(args.screenshots))
        finally:
            srv.stop()
        res["frame_shape"] = list(rv.states[ID].image.shape[1:]) if ID in rv.states else None
        res["load_average_1min_after"] = os.getloadavg()[0]
        results["cases"][case] = res
        print(case, json.dumps(res, indent=1), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
