"""octseg: intravascular OCT segmentation and clinical geometry."""

__version__ = "0.1.0"
