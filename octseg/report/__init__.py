"""Every picture and HTML page octseg draws: frame overlays (:mod:`.overlay`), the per-pullback
report (:mod:`.pullback`), the evaluation report (:mod:`.evaluation`) and training curves
(:mod:`.training`). Reports read measurements; they compute none.
"""
