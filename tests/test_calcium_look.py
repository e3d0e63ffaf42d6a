"""benchmarks/calcium_look.py: two looks of one hybrid draw, on a stand-in real block."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import calcium_look as cl
from octseg.core.errors import InputError
from octseg.datasets.hybrid import cohort
from tests.datasets.test_hybrid_variety import _stand_in_real


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The same draw (seed 5) built flat and fade, and another draw (seed 6) built fade."""
    tmp = tmp_path_factory.mktemp("looks")
    real = _stand_in_real(tmp)
    out = {}
    for name, seed, look in (("flat", 5, "flat"), ("fade", 5, "fade"), ("other", 6, "fade")):
        out[name] = tmp / name
        cohort.hybrid_from_real(real, out[name] / "val" / "hyb-x-v0", seed=seed, calcium_look=look)
    return out


def test_compare_finds_the_same_truth_and_a_clearer_back_border(builds, tmp_path):
    d = cl.compare({"f5": (builds["flat"], builds["fade"])})
    assert len(d) > 3 and set(d.pullback_id) == {"f5-v0"}
    assert (d.truth > 0).all()  # truth-calcium frames only
    assert (d.fade_step > d.flat_step).mean() > 0.8  # the faded calcium is darker at its back
    assert d.fade_step.median() > d.flat_step.median() + 0.02
    md = cl.markdown(d)
    assert md.splitlines()[2].startswith(f"| all | {len(d)} |")
    cl.figure(d, {"f5": (builds["flat"], builds["fade"])}, tmp_path / "look.png", n=2)
    assert (tmp_path / "look.png").stat().st_size > 10_000


def test_compare_refuses_two_different_draws_or_pullbacks(builds, tmp_path):
    with pytest.raises(InputError, match="not the same draw"):
        cl.compare({"f5": (builds["flat"], builds["other"])})
    (tmp_path / "val" / "hyb-x-v1").mkdir(parents=True)
    with pytest.raises(InputError, match="hyb-x-v1"):
        cl.compare({"f5": (builds["flat"], tmp_path)})
    with pytest.raises(SystemExit):
        cl.main(["--pair", f"f5={builds['flat']}:{builds['fade']}",
                 "--pair", f"f5={builds['flat']}:{builds['fade']}", "--out", str(tmp_path / "o")])  # fmt: skip


def test_pair_argument_is_checked():
    assert cl._pair("f1=a:b")[0] == "f1"
    with pytest.raises(argparse.ArgumentTypeError, match="DRAW=FLAT_BUILD:FADE_BUILD"):
        cl._pair("f1=a")
    assert cl._pair("f2=x/y:z")[1][0].name == "y"
