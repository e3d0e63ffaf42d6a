"""benchmarks/calcium_deepen_screen.py: calcium grown outward along its own A-line only, into
tissue of calcium probability >= low, in unbroken runs from a seed."""

from __future__ import annotations

import torch

from benchmarks.calcium_deepen_screen import deepen

CA, BG, LUMEN = 2, 0, 1


def _probs(p_ca: list[list[float]]) -> torch.Tensor:
    """(1, 3, A, R) probabilities: calcium as given, the rest background (channel 1 unused)."""
    ca = torch.tensor(p_ca)[None]
    return torch.stack([1 - ca, torch.zeros_like(ca), ca], dim=1)


def test_growth_runs_outward_from_a_seed_until_the_probability_drops():
    p = _probs([
        [0.0, 0.9, 0.9, 0.3, 0.2, 0.05, 0.3],  # seed at 1-2, joins 3-4, stops at 5 (0.05)
        [0.3, 0.3, 0.9, 0.3, 0.3, 0.3, 0.3],  # seed at 2: 3-5 join (6 is lumen), 0-1 (inward) never
        [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],  # no seed on this A-line: nothing
    ])  # fmt: skip
    arg = torch.where(p[:, CA] > 0.5, CA, BG)
    arg[0, 1, 6] = LUMEN  # not tissue: a lumen sample never joins and stops the run
    seeds = arg == CA
    got = deepen(p, arg, calcium=CA, background=BG, low=0.15, seeds=seeds)[0]
    assert got[0].tolist() == [False, False, False, True, True, False, False]
    assert got[1].tolist() == [False, False, False, True, True, True, False]
    assert not got[2].any()


def test_calcium_that_is_no_seed_grows_nothing():
    p = _probs([[0.0, 0.9, 0.3, 0.3]])
    arg = torch.where(p[:, CA] > 0.5, CA, BG)
    none = torch.zeros_like(arg, dtype=torch.bool)
    assert not deepen(p, arg, calcium=CA, background=BG, low=0.15, seeds=none).any()
