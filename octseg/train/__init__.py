"""Training: MONAI networks on the polar net grid (see docs/training.md).

The networks, the net grid and checkpoints live in :mod:`octseg.model`; this package holds the
loop, the data pipeline, augmentation and training metrics. Nothing outside ``train`` imports it.
"""
