"""The model stage: networks, the net grid, checkpoints, the predictor and post-processing.

``load_checkpoint(path)`` rebuilds a trained network from its checkpoint alone;
``to_net_grid`` / ``from_net_grid`` map native polar frames to and from the network's grid;
:class:`~octseg.model.predictor.Predictor` segments whole pullbacks. Training (:mod:`octseg.train`)
and inference (:mod:`octseg.infer`) both build on this package; it imports neither.
"""

from octseg.model.checkpoint import load_checkpoint
from octseg.model.grid import from_net_grid, normalize, to_net_grid

__all__ = ["load_checkpoint", "to_net_grid", "from_net_grid", "normalize"]
