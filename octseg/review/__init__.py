"""``octseg review``: a local browser app to review and correct a pullback's segmentation.

Modules: :mod:`.source` (what the opened folder holds, path safety), :mod:`.edits` (label edits
as pure functions on one frame), :mod:`.state` (a pullback under review: labels, measurements,
undo/redo), :mod:`.render` (frames, overlays and the longitudinal cut as PNG), :mod:`.save`
(corrected labels in the dataset layout with provenance), :mod:`.server` (the Starlette app) and
:mod:`.cli`. See docs/review.md.
"""
