"""Training: MONAI networks on the polar net grid (see docs/training.md).

``load_checkpoint(path)`` rebuilds a trained network from its checkpoint alone (for inference);
``to_net_grid`` / ``from_net_grid`` map native polar frames to and from the network's grid.
"""

from octseg.train.checkpoint import load_checkpoint
from octseg.train.preprocess import from_net_grid, normalize, to_net_grid

__all__ = ["load_checkpoint", "to_net_grid", "from_net_grid", "normalize"]
