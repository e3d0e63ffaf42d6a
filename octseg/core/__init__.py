"""Foundations every other package builds on: class indices, errors, atomic writes, polar and
contour helpers, catheter detection, and the distributed (torchrun / SLURM) environment.

Nothing here imports another octseg package.
"""
