"""Model checkpoints: our format, and import of the reference implementation's.

Our format is a directory with `model.safetensors` (weights and the fixed initial states)
and `config.json` ({"format": "trm", "model": {...ModelConfig}}), loadable without unpickling
anything.

The reference training script saves `step_N` (a pickled state dict with keys such as
`_orig_mod.model.inner.L_level.layers.0.mlp.gate_up_proj.weight`) beside `all_config.yaml`.
Importing one takes T, n and every shape from the checkpoint's own config and tensors, never
from our defaults (trm-spec section 10: an ARC model evaluated with the default n collapses).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from trm.config import ModelConfig, make_config
from trm.errors import CheckpointError, ConfigError
from trm.files import atomic_directory
from trm.model.precision import inference_dtype
from trm.model.trm import TRM
from trm.model.widen import widen as widen_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


# ---------------------------------------------------------------------- strict loading


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or Inf (a diverged run's, or a corrupted file's): a model
    loaded from them would answer garbage without any error."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: tensor '{key}' holds NaN or infinite values; refusing to load it")


def load_weights(model: TRM, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `model`, failing on the first missing, unknown, misshapen or
    non-finite tensor."""
    expected = model.state_dict()
    unknown = [k for k in state if k not in expected]
    if unknown:
        raise CheckpointError(f"{source}: unknown key '{unknown[0]}' is not part of the model its config describes")
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{source}: missing key '{key}' (expected shape {tuple(tensor.shape)})")
        if state[key].shape != tensor.shape:
            raise CheckpointError(
                f"{source}: tensor '{key}' has shape {tuple(state[key].shape)} in the checkpoint but "
                f"{tuple(tensor.shape)} in the model built from its config"
            )
    check_finite(state, source)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


# ---------------------------------------------------------------------- our format


def write_model(model: TRM, directory: Path, extra: dict[str, Any] | None = None) -> None:
    """Write the model's files into an existing directory (see `save_model`)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, directory / WEIGHTS)
    meta = {"format": "trm", "model": model.config.model_dump(), **(extra or {})}
    (directory / CONFIG).write_text(json.dumps(meta, indent=2))


def save_model(model: TRM, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write `model` to `directory` atomically (a temporary directory renamed into place)."""
    with atomic_directory(directory, overwrite=True) as tmp:
        write_model(model, tmp, extra)
    return Path(directory)


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found") from None
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot be read as JSON ({e})") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", **overrides: Any) -> TRM:
    """Load a checkpoint of ours or of the reference implementation, on `device`, in eval mode.

    `overrides` change config fields that do not affect shapes (forward_dtype, N_sup, ...). Without
    a forward_dtype override the model runs in its checkpoint's dtype, except that bfloat16 becomes
    float32 on a device without native bfloat16 matmuls, where float32 is faster and more precise
    (`trm.model.precision.inference_dtype`).
    """
    path = Path(path)
    if (path / WEIGHTS).exists():
        meta = read_config(path)
        if "model" not in meta:
            raise CheckpointError(f"{path / CONFIG}: has no 'model' section")
        config = make_config(ModelConfig, {**meta["model"], **overrides}, where=str(path / CONFIG))
        model = TRM(config)
        try:
            state = load_file(path / WEIGHTS)
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{path / WEIGHTS}: cannot be read ({e})") from None
        load_weights(model, state, str(path / WEIGHTS))
    else:
        model = load_official(path, **overrides)
    model = model.to(device).eval()
    if "forward_dtype" not in overrides:
        dtype = inference_dtype(model.config.forward_dtype, device)
        model.config = model.config.model_copy(update=dict(forward_dtype=dtype))
    return model


SHIPPED = Path(__file__).resolve().parent.parent / "pretrained"


def initial_weights(
    path: str | os.PathLike, config: ModelConfig, widen: bool = False, noise: float = 0.0, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The weights a run of model `config` starts from (`init_from`): those of the model directory
    `path`, or of the shipped model of that name; with `widen`, that model widened to config's
    hidden size (`trm.model.widen`, with `noise` and `seed`)."""
    source = load_model(initial_model_dir(path), forward_dtype="float32")
    if widen:
        try:
            return widen_model(source, config, noise, seed).state_dict()
        except ConfigError as e:
            raise ConfigError(f"init_widen from {path}: {e}") from None
    if source.config.hidden_size != config.hidden_size:
        raise CheckpointError(
            f"init_from {path}: its hidden_size is {source.config.hidden_size}, this run's {config.hidden_size} "
            "(init_widen=true starts from a narrower TRM-MLP widened to this width)"
        )
    return source.state_dict()


def initial_model_dir(path: str | os.PathLike) -> Path:
    """The model directory `init_from` names: `path`, or the shipped model of that name."""
    directory = Path(path)
    if not directory.exists() and len(directory.parts) == 1 and (SHIPPED / directory).is_dir():
        directory = SHIPPED / directory
    if not directory.is_dir():
        shipped = ", ".join(sorted(p.name for p in SHIPPED.iterdir() if p.is_dir())) if SHIPPED.is_dir() else "none"
        raise CheckpointError(
            f"init_from {path}: no such model directory (expected a directory holding {WEIGHTS} and "
            f"{CONFIG}, or a shipped model: {shipped})"
        )
    return directory


# ---------------------------------------------------------------------- reference format

_PREFIX = re.compile(r"^(_orig_mod\.)?(model\.)?(inner\.)?")
_LAYER_RENAMES = {"self_attn.": "mixer.", "mlp_t.": "mixer."}


def _strip(key: str) -> str:
    return _PREFIX.sub("", key)


def _official_kind(keys: set[str], arch_name: str | None) -> str:
    """Which reference model a checkpoint comes from: trm, trm_singlez, trm_hier6, hrm or
    transformers_baseline, from the config's `arch.name` or else from its keys."""
    if arch_name:
        module = arch_name.split("@")[0].split(".")[-1]
        if module in ("trm", "trm_singlez", "trm_hier6", "hrm", "transformers_baseline"):
            return module
        raise CheckpointError(f"arch.name '{arch_name}' is not a reference model this package can import")
    has_h = any(k.startswith("H_level.") for k in keys)
    has_l = any(k.startswith("L_level.") for k in keys)
    if has_h and has_l:
        return "hrm"
    if has_h:
        return "transformers_baseline"
    if "L1_init" in keys:
        return "trm_hier6"
    if "H_init" not in keys:
        return "trm_singlez"
    return "trm"


def convert_official_state(state: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """Rename a reference state dict to our keys."""
    out: dict[str, torch.Tensor] = {}
    z_inits: dict[int, torch.Tensor] = {}
    for raw_key, tensor in state.items():
        key = _strip(raw_key)
        if key in ("H_init", "L_init") or re.fullmatch(r"L\d_init", key):
            if key == "H_init" or kind == "trm_singlez":
                out["y_init"] = tensor
            else:
                z_inits[int(key[1]) - 1 if key[1].isdigit() else 0] = tensor
            continue
        key = key.replace("embedding_weight", "weight").replace("puzzle_emb.weights", "puzzle_emb.weight")
        for old, new in _LAYER_RENAMES.items():
            key = key.replace(old, new)
        if key.startswith("H_level."):
            key = ("net_y." if kind == "hrm" else "net.") + key.removeprefix("H_level.")
        elif key.startswith("L_level."):
            key = "net." + key.removeprefix("L_level.")
        out[key] = tensor
    if z_inits:
        out["z_init"] = torch.stack([z_inits[i] for i in sorted(z_inits)])
    elif kind in ("trm_singlez", "transformers_baseline"):
        out["z_init"] = torch.zeros(0, out["y_init"].shape[-1], dtype=out["y_init"].dtype)
    return out


def _read_official_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise CheckpointError(f"{path}: cannot be read ({e})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a mapping of config fields")
    return raw


def _dataset_seq_len(raw: dict[str, Any], config_path: Path) -> int | None:
    """seq_len of the dataset the run trained on, if its dataset.json can be found."""
    for data_path in raw.get("data_paths") or []:
        for base in (Path(data_path), config_path.parent / data_path):
            meta = base / "train" / "dataset.json"
            if meta.exists():
                return int(json.loads(meta.read_text())["seq_len"])
    return None


def official_model_config(
    raw: dict[str, Any], state: dict[str, torch.Tensor], config_path: Path, overrides: dict[str, Any]
) -> ModelConfig:
    """Our ModelConfig for a reference checkpoint: fields from its config (all_config.yaml
    with an `arch` section, or the arch fields themselves), shapes from its tensors."""
    arch = dict(raw.get("arch", raw))
    keys = {_strip(k) for k in state}
    kind = _official_kind(keys, arch.get("name"))

    def get(name: str, default: Any = None) -> Any:
        if name in arch:
            return arch[name]
        if default is None:
            raise CheckpointError(f"{config_path}: missing field '{name}'")
        return default

    embed = state[next(k for k in state if _strip(k) == "embed_tokens.embedding_weight")]
    D = int(get("hidden_size", embed.shape[1]))
    P = int(arch.get("puzzle_emb_ndim", 0) or 0)
    # HRM and the transformer baseline always use ceil(P / D) prefix positions.
    emb_len = int(arch.get("puzzle_emb_len", 16)) if kind in ("trm", "trm_singlez", "trm_hier6") else 0
    prefix = (emb_len or math.ceil(P / D)) if P > 0 else 0

    values: dict[str, Any] = dict(
        vocab_size=int(embed.shape[0]),
        hidden_size=D,
        num_heads=int(get("num_heads")),
        expansion=float(get("expansion")),
        mixer="mlp" if arch.get("mlp_t", False) else "attention",
        pos_encodings=get("pos_encodings"),
        rope_theta=float(arch.get("rope_theta", 10000.0)),
        rms_norm_eps=float(arch.get("rms_norm_eps", 1e-5)),
        puzzle_emb_ndim=P,
        puzzle_emb_len=emb_len,
        N_sup=int(get("halt_max_steps")),
        halt_exploration_prob=float(get("halt_exploration_prob")),
        loss="softmax" if "softmax" in str(arch.get("loss", {}).get("loss_type", "")) else "stablemax",
    )
    if P > 0:
        table = next(v for k, v in state.items() if k.endswith("puzzle_emb.weights"))
        values["num_puzzle_identifiers"] = int(table.shape[0])
    elif "num_puzzle_identifiers" in arch:
        values["num_puzzle_identifiers"] = int(arch["num_puzzle_identifiers"])

    if kind == "hrm":
        values.update(
            T=int(get("H_cycles")),
            n=int(get("L_cycles")),
            num_layers=int(get("L_layers")),
            y_layers=int(get("H_layers")),
            separate_nets=True,
            one_step_gradient=True,
            act_continue=True,
        )
    elif kind == "transformers_baseline":
        values.update(T=1, n=0, latent="none", num_layers=int(get("H_layers")))
    else:
        values.update(
            T=int(get("H_cycles")),
            n=int(get("L_cycles")),
            num_layers=int(get("L_layers")),
            act_continue=not arch.get("no_ACT_continue", True),
            latent={"trm": "yz", "trm_singlez": "single_z", "trm_hier6": "multiscale_z"}[kind],
        )

    # seq_len: from the config, else from a tensor whose shape holds it, else from the dataset.
    seq_len = arch.get("seq_len")
    for key, tensor in state.items():
        k = _strip(key)
        if seq_len is None and k == "embed_pos.embedding_weight":
            seq_len = tensor.shape[0] - prefix
        if seq_len is None and k.endswith("mlp_t.gate_up_proj.weight"):
            seq_len = tensor.shape[1] - prefix
    seq_len = seq_len or overrides.get("seq_len") or _dataset_seq_len(raw, config_path)
    if seq_len is None:
        raise CheckpointError(
            f"{config_path}: the sequence length is not in the config and cannot be derived from the "
            "tensors or the training data; pass it explicitly (seq_len=900 for ARC and 30x30 mazes, 81 for Sudoku)"
        )
    values["seq_len"] = int(seq_len)
    return make_config(ModelConfig, {**values, **overrides}, where=str(config_path))


def _find_official_files(path: Path, config: str | os.PathLike | None) -> tuple[Path, Path]:
    """The weights file and config file of a reference checkpoint given as a file or a directory."""
    if path.is_dir():
        steps = sorted(path.glob("step_*"), key=lambda p: int(re.sub(r"\D", "", p.name.split("_")[1]) or 0))
        steps = [p for p in steps if re.fullmatch(r"step_\d+", p.name)]
        if not steps:
            raise CheckpointError(
                f"{path}: neither our checkpoint ({WEIGHTS} + {CONFIG}) nor a reference run directory (step_N files)"
            )
        weights = steps[-1]
    elif path.exists():
        weights = path
    else:
        raise CheckpointError(f"{path}: checkpoint not found")
    if config is None:
        stem = weights.name.split(".")[0]
        candidates = [weights.parent / "all_config.yaml", weights.with_name(f"{stem}.config.json")]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise CheckpointError(f"{weights}: no all_config.yaml beside it; pass the config file explicitly")
        config = found[0]
    return weights, Path(config)


def load_official(path: str | os.PathLike, config: str | os.PathLike | None = None, **overrides: Any) -> TRM:
    """Import a checkpoint saved by the reference training script.

    `path` is a `step_N` file or the run directory holding it (the newest is taken) and
    `config` its `all_config.yaml` or a JSON file of the arch fields (found beside the weights
    when omitted). The file is read with `torch.load(weights_only=True)`: no code runs.
    """
    weights, config_path = _find_official_files(Path(path), config)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle and zip errors come in many types
        raise CheckpointError(f"{weights}: cannot be read as a PyTorch state dict ({e})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{weights}: expected a state dict of tensors")
    if not any(_strip(k) == "embed_tokens.embedding_weight" for k in state):
        raise CheckpointError(
            f"{weights}: no 'embed_tokens.embedding_weight' tensor; not a reference TRM/HRM checkpoint"
        )
    raw = _read_official_config(config_path)
    model_config = official_model_config(raw, state, config_path, overrides)
    kind = _official_kind({_strip(k) for k in state}, dict(raw.get("arch", raw)).get("name"))
    model = TRM(model_config)
    load_weights(model, convert_official_state(state, kind), str(weights))
    return model.eval()
