import ctypes
import json
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
import torch
from trm.allocator import reuse_freed_memory
kept = reuse_freed_memory() if sys.argv[1] == "reuse" else False
def step():  # a training step's pattern: large activations of several sizes, freed at the end
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    alive = []
    for mib in (40, 80, 20, 76, 76, 10):
        alive += [torch.ones(mib * 2**18), torch.ones(10)]
    del alive
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"kept": kept, "faults": [step() for _ in range(16)]}))
"""
PAGES_PER_STEP = 302 * 2**20 // 4096  # the step above touches 302 MiB


def _glibc() -> bool:
    try:
        return callable(ctypes.CDLL("libc.so.6").gnu_get_libc_version) and sys.platform.startswith("linux")
    except (OSError, AttributeError):
        return False


def _run(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _glibc(), reason="the setting is glibc's")
def test_freed_activations_are_reused_instead_of_faulted_in_again():
    default = _run("default")
    assert default["kept"] is False
    assert min(default["faults"][8:]) > PAGES_PER_STEP // 2  # glibc unmaps large blocks: every step faults
    kept = _run("reuse")
    assert kept["kept"] is True
    later = sorted(kept["faults"][8:])
    assert later[len(later) // 2] < PAGES_PER_STEP // 100  # after warm-up, served from memory kept...
    assert sum(later) < sum(default["faults"][8:]) // 4  # ...but for an occasional block that no longer fits
