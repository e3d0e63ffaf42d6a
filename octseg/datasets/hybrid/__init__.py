"""Hybrid training data: synthetic calcium and stent struts placed into real polar frames.

:mod:`octseg.datasets.hybrid.insert` paints one lesion or strut into one frame with exact labels;
:mod:`octseg.datasets.hybrid.draw` draws lesions, distractors and stents consistent across
frames (and the training builds' :class:`~octseg.datasets.hybrid.draw.LesionMix` shares);
:mod:`octseg.datasets.hybrid.bins` keeps inserts off the guidewire shadow and the field's edge;
:mod:`octseg.datasets.hybrid.cohort` inserts the draws into real frames, writes hybrid pullbacks
in the dataset layout with their true measurements; :mod:`octseg.datasets.hybrid.render` draws
the Cartesian views (console frames, outlines, side-by-side figures).
"""
