from pathlib import Path

import pytest

# The project's shared material (reference fixtures, ARC and Sudoku data) sits beside the
# repository in development and CI. Tests that need it are skipped when it is absent.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared material not available: {path}")
    return path


@pytest.fixture
def shared():
    """Callable fixture: shared('data', 'arc') -> path, skipping the test when absent."""
    return shared_path
