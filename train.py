"""Placeholder: the train job is not implemented yet (see the open issue for training)."""

import sys

sys.exit(
    "train.py: not implemented yet - this build has no training job; see the project's open issues."
)
