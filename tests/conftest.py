from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OCTSEG_SHARED", ROOT.parent / "shared"))
DANILOV = SHARED / "data" / "ivoct-danilov" / "pullback-001"


@pytest.fixture(scope="session")
def danilov_dir() -> Path:
    """The real pullback in ../shared/data; tests using it skip where it is absent."""
    if not (DANILOV / "frames").is_dir():
        pytest.skip(f"real pullback not found at {DANILOV} (../shared/data is absent)")
    return DANILOV
