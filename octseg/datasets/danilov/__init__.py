"""The public Danilov et al. IVOCT pullback with expert lumen, fibrous-cap and lipid masks:
its reader (:mod:`.reader`) and the builder of octseg datasets from it (:mod:`.build`).
"""
