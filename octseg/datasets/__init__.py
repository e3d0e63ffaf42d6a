"""Data makers, above the product: synthetic pullbacks (:mod:`.synth`), hybrid frames (real frames
with inserted calcium and struts, :mod:`.hybrid`), the public Danilov pullback (:mod:`.danilov`),
appearance transforms (:mod:`.appearance`), robustness sets (:mod:`.robustness`) and tiny test
datasets (:mod:`.toy`). The product packages (core, io, geometry, model, infer, evaluate, report)
never import them.
"""
