"""Hybrid training data: synthetic calcium and stent struts placed into real polar frames.

:mod:`octseg.datasets.hybrid.insert` paints one lesion or strut into one frame with exact labels;
:mod:`octseg.datasets.hybrid.cohort` draws lesions/stents consistent across frames, writes hybrid
pullbacks in the dataset layout with their true measurements, and renders side-by-side views.
"""
