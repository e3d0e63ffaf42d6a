"""Placeholder: the infer job is not implemented yet (see the open issue for infering)."""

import sys

sys.exit(
    "infer.py: not implemented yet - this build has no infering job; see the project's open issues."
)
