"""Inference settings a checkpoint recommends (``meta["infer_recommended"]``).

A training recipe can be validated with inference settings that are not the product's defaults
(``experiment=hybrid``: test-time augmentation and a minimum calcium area,
docs/calcium_candidates.md). ``train.py`` stores the experiment's ``infer_recommended`` in the
checkpoint; ``infer.py`` applies it wherever the user left the setting unset (``tta.enabled`` /
``postprocess.calcium_min_area_mm2`` / ``postprocess.calcium_min_length_mm`` /
``postprocess.calcium_extend_prob`` null, their defaults), so the recipe's measured numbers are
what a plain ``infer.py checkpoint=...`` gives. A setting given on the command line always wins.

Keys (every one optional): ``tta`` (true / false: the rolls and flip are the infer config's
``tta.rolls`` / ``tta.flip``), ``calcium_min_area_mm2`` (>= 0, mm²), ``calcium_min_length_mm``
(>= 0, mm; :mod:`octseg.model.postprocess`), ``calcium_extend_prob`` (0 <= p < 1;
:mod:`octseg.model.extend`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError
from octseg.model.extend import is_extend_prob

META_KEY = "infer_recommended"
KEYS = ("tta", "calcium_min_area_mm2", "calcium_min_length_mm", "calcium_extend_prob")
# the recommendations that are postprocess settings (postprocess.KEY in the infer config)
POSTPROCESS_KEYS = KEYS[1:]
# the recommendations that are amounts >= 0, with their unit
_AMOUNTS = {"calcium_min_area_mm2": "mm²", "calcium_min_length_mm": "mm"}


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
    for key, unit in _AMOUNTS.items():
        if key in value:
            out[key] = _amount(value[key], f"{META_KEY}.{key}", unit, source)
    if "calcium_extend_prob" in value:
        p = value["calcium_extend_prob"]
        if not is_extend_prob(p):
            raise InputError(source, f"{META_KEY}.calcium_extend_prob={p!r}: a number in [0, 1)")
        out["calcium_extend_prob"] = float(p)
    return out


def _amount(v: Any, name: str, unit: str, source: str | Path | None) -> float:
    """``v`` as a float if it is a finite number >= 0, else InputError naming ``name``."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if not ok or not math.isfinite(v) or v < 0:
        raise InputError(source, f"{name}={v!r}: a number >= 0 ({unit})")
    return float(v)


def recommended(meta: Mapping[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """The checkpoint ``meta``'s recommendations, checked (older checkpoints: none)."""
    return check_recommended(meta.get(META_KEY), source)
