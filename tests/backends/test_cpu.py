"""The CPU backend: oneDNN float32 products equal PyTorch's default ones within float32
rounding, the whole model gives the same logits with it on and off, and freed memory is kept."""

import ctypes
import json
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.precision import reordering_tolerance, worst_case_sum_error
from trm.backends import BACKENDS, Backend, OneDNN, get_backend, onednn_available
from trm.backends.cpu import LeftMatmul, onednn_matmul_nt
from trm.config import ModelConfig
from trm.errors import ConfigError
from trm.model import TRM
from trm.model.layers import Network

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this PyTorch build has no oneDNN")


LAYOUTS = {
    "row-major": lambda t: t,
    "column-major": lambda t: t.t().contiguous().t(),
    "every other element": lambda t: torch.stack((t, t), dim=-1).reshape(t.shape[0], -1)[:, ::2],
}


@needs_onednn
@pytest.mark.parametrize("a_layout", LAYOUTS)
@pytest.mark.parametrize("b_layout", LAYOUTS)
def test_onednn_matmul_is_float32_exact_for_any_strides(a_layout, b_layout):
    g = torch.Generator().manual_seed(0)
    a = LAYOUTS[a_layout](torch.randn(37, 81, generator=g))
    b = LAYOUTS[b_layout](torch.randn(50, 81, generator=g))
    exact = a.double() @ b.double().t()
    got = onednn_matmul_nt(a, b)
    assert got.dtype == torch.float32 and got.shape == (37, 50)
    # Within float32's worst-case error for an 81-term dot product (a bfloat16 or TF32 product is not).
    bound = worst_case_sum_error(torch.float32, 81) * (a.double().abs() @ b.double().abs().t())
    assert ((got.double() - exact).abs() <= bound).all()


@needs_onednn
def test_onednn_matmul_gradients_match_the_default_path():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(24, 16, generator=g, requires_grad=True)
    b = torch.randn(10, 16, generator=g, requires_grad=True)
    grad = torch.randn(24, 10, generator=g)
    onednn_matmul_nt(a, b).backward(grad)
    ours = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    (a @ b.t()).backward(grad)
    torch.testing.assert_close(ours, (a.grad, b.grad))


def _assert_close_to_scale(got, expected):
    """Elementwise within float32 rounding of each tensor's largest magnitude, summed in another order.
    The widest sum in these networks is over SwiGLU's 256 intermediate features."""
    tol = reordering_tolerance(torch.float32, 256)
    for g, e in zip(got, expected, strict=True):
        assert (g - e).abs().max() <= tol * e.abs().max(), (g - e).abs().max() / e.abs().max()


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.name())
        return func(*args, **(kwargs or {}))


def _network_run(mixer: str, backend: Backend):
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, seq_len=9, hidden_size=16, num_heads=2, mixer=mixer, pos_encodings="none")
    net = Network(cfg, 2, backend)
    h, u, r = torch.randn(3, 3, 9, 16).unbind(0)
    with _Ops() as ops:
        out = net(h, u, None)
        (out * r).sum().backward()  # not a function of the norm alone, which the blocks fix
    return out.detach(), [p.grad for p in net.parameters()], ops.names


@needs_onednn
@pytest.mark.parametrize("mixer", ["mlp", "attention"])
def test_float32_network_gives_the_same_outputs_and_gradients_through_onednn(mixer):
    out, grads, ops = _network_run(mixer, OneDNN())
    out_default, grads_default, ops_default = _network_run(mixer, Backend())
    assert "trm::onednn_matmul_nt" in ops and "trm::onednn_matmul_nt" not in ops_default
    _assert_close_to_scale([out, *grads], [out_default, *grads_default])


def test_onednn_is_used_for_float32_cpu_only():
    backend = OneDNN()
    assert not backend._float32(torch.zeros(2, dtype=torch.bfloat16))
    assert not backend._float32(torch.zeros(2, dtype=torch.float64))
    assert backend._float32(torch.zeros(2)) is onednn_available()


def test_backends_are_named_in_one_registry():
    assert set(BACKENDS) == {"default", "onednn"}
    assert isinstance(get_backend("onednn"), OneDNN) and type(get_backend("default")) is Backend
    with pytest.raises(ConfigError, match="backend"):
        get_backend("fast")


def test_left_matmul_gradients_match_autograd():
    w = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LeftMatmul.apply, (w, x))


def _logits(backend: Backend, dtype: torch.dtype, mixer: str) -> torch.Tensor:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=11,
        seq_len=16,
        hidden_size=64,
        num_heads=2,
        mixer=mixer,
        T=2,
        n=2,
        pos_encodings="none" if mixer == "mlp" else "rope",
    )
    model = TRM(cfg).eval()
    model.use_backend(backend)  # as `trm eval` switches a loaded checkpoint's
    model.dtype = dtype
    g = torch.Generator().manual_seed(1)
    batch = {
        "inputs": torch.randint(1, 11, (4, 16), generator=g),
        "puzzle_identifiers": torch.zeros(4, dtype=torch.long),
    }
    return model.rollout(batch, steps=2)["logits"].float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mixer", ["mlp", "attention"])
def test_the_model_gives_the_same_logits_with_the_backend_on_and_off(dtype, mixer):
    on, off = _logits(OneDNN(), dtype, mixer), _logits(Backend(), dtype, mixer)
    # 2 steps x 2 cycles x 3 calls x 2 layers of post-norm blocks: reordered sums stay at the
    # rounding of the widest sum (SwiGLU's 256 features) times the depth the difference crosses.
    tol = 24 * reordering_tolerance(dtype, 256)
    assert (on - off).abs().max() <= tol * off.abs().max()
    if dtype == torch.float32 and mixer == "mlp":
        assert not torch.equal(on, off) or not onednn_available()  # the test sees two paths


@needs_onednn
@pytest.mark.slow
def test_compiled_float32_mlp_training_step_matches_eager_through_onednn():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, seq_len=9, hidden_size=16, num_heads=2, mixer="mlp", pos_encodings="none")
    net = Network(cfg, 2, OneDNN())
    h, u, r = torch.randn(3, 3, 9, 16).unbind(0)

    def run(module):
        net.zero_grad(set_to_none=True)
        out = module(h, u, None)
        (out * r).sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    out, grads = run(net)
    out_compiled, grads_compiled = run(torch.compile(net))
    _assert_close_to_scale([out_compiled, *grads_compiled], [out, *grads])


CHILD = """
import json, resource, sys
import torch
from trm.backends.cpu import reuse_freed_memory
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


TRIM_CHILD = """
import json, sys
import torch
from trm.backends.cpu import reuse_freed_memory, trim_freed_memory
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
untouched = trim_freed_memory()  # before reuse_freed_memory: glibc trims by itself, nothing to do
kept = reuse_freed_memory() if sys.argv[1] == "reuse" else False
alive = [torch.ones(mib * 2**18) for mib in (40, 80, 20, 76, 76, 10)]
del alive  # 302 MiB freed: kept by the process while the setting is in force
before = rss_mib()
trimmed = trim_freed_memory()
print(json.dumps({"untouched": untouched, "kept": kept, "trimmed": trimmed, "before": before, "after": rss_mib()}))
"""


@pytest.mark.skipif(not _glibc(), reason="the setting is glibc's")
def test_trimming_gives_kept_memory_back_only_where_it_is_kept():
    def run(mode: str) -> dict:
        out = subprocess.run([sys.executable, "-c", TRIM_CHILD, mode], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    kept = run("reuse")
    assert kept["untouched"] is False and kept["kept"] is True and kept["trimmed"] is True
    assert kept["before"] - kept["after"] > 250  # MiB: the freed blocks went back to the kernel
    default = run("default")
    assert default["trimmed"] is False
    assert default["before"] - default["after"] < 50  # glibc had unmapped them already: nothing kept


def test_backend_names_agree_between_the_registry_the_cli_and_the_train_config():
    from typing import get_args

    from trm.backends import BACKENDS
    from trm.config import BACKEND_CHOICES
    from trm.train.config import TrainConfig

    assert ("auto", *BACKENDS) == BACKEND_CHOICES
    assert get_args(TrainConfig.model_fields["backend"].annotation) == BACKEND_CHOICES
