"""Checkpoints: our safetensors format round-trips; reference checkpoints import; errors name keys."""

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from tests.conftest import shared_path
from trm.config import ModelConfig
from trm.errors import CheckpointError
from trm.model import TRM, load_model, load_official, save_model

SMALL = dict(vocab_size=12, seq_len=16, hidden_size=32, num_heads=2, T=2, n=2, N_sup=3, puzzle_emb_ndim=32,
             puzzle_emb_len=2, num_puzzle_identifiers=5)


def batch_for(cfg: ModelConfig):
    g = torch.Generator().manual_seed(0)
    return {
        "inputs": torch.randint(0, cfg.vocab_size, (3, cfg.seq_len), generator=g),
        "labels": torch.randint(0, cfg.vocab_size, (3, cfg.seq_len), generator=g),
        "puzzle_identifiers": torch.tensor([0, 3, 4]),
    }


def test_our_format_round_trips_weights_states_and_config(tmp_path):
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL))
    model.puzzle_emb.weight.normal_()  # trained embeddings must survive too
    save_model(model, tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    batch = batch_for(model.config)
    assert torch.equal(loaded.rollout(batch, 2)["logits"], model.eval().rollout(batch, 2)["logits"])


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    model = TRM(ModelConfig(**SMALL))
    save_model(model, tmp_path / "ckpt")
    save_model(model, tmp_path / "ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_config_that_does_not_match_tensors_names_the_first_tensor_and_both_shapes(tmp_path):
    save_model(TRM(ModelConfig(**SMALL)), tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    meta["model"]["vocab_size"] = 13
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"'embed_tokens.weight' has shape \(12, 32\).*\(13, 32\)"):
        load_model(tmp_path / "ckpt")


@pytest.mark.parametrize("change, message", [("drop", "missing key 'lm_head.weight'"),
                                             ("add", "unknown key 'extra.weight'")])
def test_missing_or_unknown_keys_are_named(tmp_path, change, message):
    save_model(TRM(ModelConfig(**SMALL)), tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "model.safetensors"
    state = load_file(path)
    if change == "drop":
        del state["lm_head.weight"]
    else:
        state["extra.weight"] = torch.zeros(2)
    save_file(state, path)
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path / "ckpt")


def test_unreadable_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="step_N"):
        load_model(tmp_path / "empty")
    (tmp_path / "garbage").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_official(tmp_path / "garbage", tmp_path / "missing.yaml")


def reference_run_dir(tmp_path, case: str, arch_name: str, with_seq_len: bool = True):
    """A directory laid out as the reference training script leaves it."""
    root = shared_path("fixtures", "official-trm")
    fields = json.loads((root / f"{case}.config.json").read_text())
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(root / f"{case}.official.pt", run / "step_1234")
    dataset_fields = ("seq_len", "vocab_size", "num_puzzle_identifiers", "batch_size")
    arch = {k: v for k, v in fields.items() if k not in dataset_fields}
    arch.update(name=arch_name, loss={"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"})
    all_config = {"arch": arch, "data_paths": [str(tmp_path / "data")], "global_batch_size": 768, "lr": 1e-4}
    (run / "all_config.yaml").write_text(yaml.safe_dump(all_config))
    if with_seq_len:
        (tmp_path / "data" / "train").mkdir(parents=True)
        (tmp_path / "data" / "train" / "dataset.json").write_text(json.dumps({"seq_len": fields["seq_len"]}))
    return run, root / f"{case}.official.pt", root / f"{case}.config.json"


@pytest.mark.parametrize("case, arch_name", [
    ("trm_att_arc", "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"),
    ("hrm_att_arc", "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1"),
])
def test_reference_run_directory_with_all_config_yaml(tmp_path, case, arch_name):
    run, weights, config_json = reference_run_dir(tmp_path, case, arch_name)
    from_dir = load_model(run)
    from_json = load_official(weights, config_json)
    assert from_dir.config == from_json.config
    batch = torch.load(weights.with_name(f"{case}.expected.pt"), weights_only=False)
    batch = {k: batch[k] for k in ("inputs", "labels", "puzzle_identifiers")}
    assert torch.equal(from_dir.rollout(batch, 2)["logits"], from_json.rollout(batch, 2)["logits"])


def test_import_takes_recursion_depth_from_the_checkpoint_config(tmp_path):
    root = shared_path("fixtures", "official-trm")
    model = load_official(root / "trm_att_arc.official.pt", root / "trm_att_arc.config.json")
    assert (model.config.T, model.config.n, model.config.prefix_len) == (3, 4, 16)


def test_rope_checkpoint_without_sequence_length_asks_for_it(tmp_path):
    run, _, _ = reference_run_dir(tmp_path, "trm_att_arc", "recursive_reasoning.trm@X", with_seq_len=False)
    with pytest.raises(CheckpointError, match="seq_len"):
        load_model(run)
    assert load_model(run, seq_len=36).config.seq_len == 36


def test_reference_config_with_wrong_width_names_tensor_and_shapes(tmp_path):
    root = shared_path("fixtures", "official-trm")
    fields = json.loads((root / "trm_mlp_sudoku.config.json").read_text())
    fields["expansion"] = 8
    bad = tmp_path / "bad.config.json"
    bad.write_text(json.dumps(fields))
    message = r"'net.layers.0.mixer.gate_up_proj.weight' has shape \(512, 81\).*\(1024, 81\)"
    with pytest.raises(CheckpointError, match=message):
        load_official(root / "trm_mlp_sudoku.official.pt", bad)
