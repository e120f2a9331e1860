"""Where the tests find this checkout and the shared data mirror beside it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO.parent / "shared").resolve()
SHARED_DATA = SHARED / "data"
RT = SHARED_DATA / "rotten_tomatoes"
