"""Inference settings a checkpoint recommends (``meta["infer_recommended"]``).

A training recipe can be validated with inference settings that are not the product's defaults
(``experiment=hybrid``: test-time augmentation and a minimum calcium area,
docs/calcium_candidates.md). ``train.py`` stores the experiment's ``infer_recommended`` in the
checkpoint; ``infer.py`` applies it wherever the user left the setting unset (``tta.enabled`` /
``postprocess.calcium_min_area_mm2`` / ``postprocess.calcium_extend_prob`` null, their
defaults), so the recipe's measured numbers are
what a plain ``infer.py checkpoint=...`` gives. A setting given on the command line always wins.

Keys (every one optional): ``tta`` (true / false: the rolls and flip are the infer config's
``tta.rolls`` / ``tta.flip``), ``calcium_min_area_mm2`` (>= 0, mm²), ``calcium_extend_prob``
(0 <= p < 1; :mod:`octseg.model.extend`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError
from octseg.model.extend import is_extend_prob

META_KEY = "infer_recommended"
KEYS = ("tta", "calcium_min_area_mm2", "calcium_extend_prob")
# the recommendations that are postprocess settings (postprocess.KEY in the infer config)
POSTPROCESS_KEYS = ("calcium_min_area_mm2", "calcium_extend_prob")


def check_recommended(value: Any, source: str | Path | None = None) -> dict[str, Any]:
    """``value`` as a plain dict of known, well-typed recommendations (None / empty: none);
    InputError naming ``source`` (the checkpoint or the config key) and the bad entry."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(source, f"{META_KEY} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise InputError(source, f"{META_KEY}: unknown key(s) {unknown}; known: {list(KEYS)}")
    out: dict[str, Any] = {}
    if "tta" in value:
        if value["tta"] not in (True, False):
            raise InputError(source, f"{META_KEY}.tta={value['tta']!r}: true or false")
        out["tta"] = bool(value["tta"])
    if "calcium_min_area_mm2" in value:
        area = value["calcium_min_area_mm2"]
        ok = isinstance(area, (int, float)) and not isinstance(area, bool)
        if not ok or not math.isfinite(area) or area < 0:
            raise InputError(
                source, f"{META_KEY}.calcium_min_area_mm2={area!r}: a number >= 0 (mm²)"
            )
        out["calcium_min_area_mm2"] = float(area)
    if "calcium_extend_prob" in value:
        p = value["calcium_extend_prob"]
        if not is_extend_prob(p):
            raise InputError(source, f"{META_KEY}.calcium_extend_prob={p!r}: a number in [0, 1)")
        out["calcium_extend_prob"] = float(p)
    return out


def recommended(meta: Mapping[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """The checkpoint ``meta``'s recommendations, checked (older checkpoints: none)."""
    return check_recommended(meta.get(META_KEY), source)
