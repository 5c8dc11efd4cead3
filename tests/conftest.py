import os
from pathlib import Path

import pytest

# The project's shared material (reference fixtures, ARC and Sudoku data) sits beside the
# repository in development and CI, or where TRM_SHARED points. Tests that need it are skipped
# when it is absent.
SHARED = Path(os.environ.get("TRM_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")

# cuBLAS is deterministic only with a fixed workspace, set before its first use (CUDA tests).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared material not available: {path}")
    return path


@pytest.fixture
def shared():
    """Callable fixture: shared('data', 'arc') -> path, skipping the test when absent."""
    return shared_path
