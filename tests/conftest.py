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


def pytest_report_header(config) -> list[str]:
    """The CPU as torch sees it, printed before the tests: numeric tolerances follow from it."""
    import torch

    from trm.backends import onednn_available
    from trm.model.precision import native_bfloat16, resolve_forward_dtype

    def has(name: str) -> str:
        return "yes" if getattr(torch.cpu, name, lambda: False)() else "no"

    return [
        f"cpu: torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
        f"AVX512-BF16 {has('_is_avx512_bf16_supported')}, AMX {has('_is_amx_tile_supported')}, "
        f"native bfloat16 {'yes' if native_bfloat16('cpu') else 'no'} (auto forward dtype: "
        f"{resolve_forward_dtype('auto', 'cpu')}), oneDNN float32 matmuls "
        f"{'available' if onednn_available() else 'unavailable'} (backend onednn), "
        f"{torch.get_num_threads()} threads"
    ]
