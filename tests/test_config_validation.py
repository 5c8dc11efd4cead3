"""Every config field is range-checked, and YAML files fail with a message naming the file."""

from pathlib import Path

import pytest

from trm.cli import main
from trm.config import ModelConfig
from trm.errors import ConfigError
from trm.train.config import CONFIGS, DataConfig, LogConfig, TrainConfig, load_train_config, shipped_configs

REPO = Path(__file__).resolve().parents[1]

# (override, the field the message must name)
BAD_VALUES = [
    ("lr=-1", "lr"),
    ("lr=0", "lr"),
    ("lr=nan", "lr"),
    ("lr=.inf", "lr"),
    ("lr=1e400", "lr"),
    ("lr=fast", "lr"),
    ("lr_min_ratio=1.5", "lr_min_ratio"),
    ("lr_min_ratio=-0.1", "lr_min_ratio"),
    ("lr_warmup_steps=-1", "lr_warmup_steps"),
    ("beta1=-0.1", "beta1"),
    ("beta1=1", "beta1"),
    ("beta2=1.5", "beta2"),
    ("weight_decay=-1", "weight_decay"),
    ("puzzle_emb_lr=-1e-4", "puzzle_emb_lr"),
    ("puzzle_emb_weight_decay=-1", "puzzle_emb_weight_decay"),
    ("ema_rate=2", "ema_rate"),
    ("ema_rate=1", "ema_rate"),
    ("ema_rate=-.nan", "ema_rate"),
    ("max_steps=-5", "max_steps"),
    ("max_steps=0", "max_steps"),
    ("max_steps=2.5", "max_steps"),
    ("max_minutes=0", "max_minutes"),
    ("max_minutes=.inf", "max_minutes"),
    ("checkpoint_minutes=0", "checkpoint_minutes"),
    ("checkpoint_minutes=-1", "checkpoint_minutes"),
    ("epochs=0", "epochs"),
    ("global_batch_size=0", "global_batch_size"),
    ("eval_interval=0", "eval_interval"),
    ("eval_interval_epochs=0", "eval_interval_epochs"),
    ("eval_batch_size=0", "eval_batch_size"),
    ("checkpoint_interval=0", "checkpoint_interval"),
    ("keep_last=0", "keep_last"),
    ("threads=0", "threads"),
    ("seed=-1", "seed"),
    ("seed=18446744073709551616", "seed"),
    ("name=''", "name"),
    ("name=a/b", "name"),
    ("name=..", "name"),
    ("device=tpu", "device"),
    ("optimizer=sgd", "optimizer"),
    ("data.eval_limit=0", "data.eval_limit"),
    ("data.path=''", "data.path"),
    ("data.augment=maze", "data.augment"),
    ("log.every=0", "log.every"),
    ("log.wandb_project=''", "log.wandb_project"),
    ("model.hidden_size=0", "model.hidden_size"),
    ("model.num_heads=0", "model.num_heads"),
    ("model.vocab_size=0", "model.vocab_size"),
    ("model.seq_len=-1", "model.seq_len"),
    ("model.num_layers=0", "model.num_layers"),
    ("model.expansion=0", "model.expansion"),
    ("model.expansion=nan", "model.expansion"),
    ("model.rope_theta=0", "model.rope_theta"),
    ("model.rms_norm_eps=0", "model.rms_norm_eps"),
    ("model.puzzle_emb_ndim=-1", "model.puzzle_emb_ndim"),
    ("model.puzzle_emb_len=-1", "model.puzzle_emb_len"),
    ("model.T=0", "model.T"),
    ("model.n=-1", "model.n"),
    ("model.N_sup=0", "model.N_sup"),
    ("answer_loss_from_step=0", "answer_loss_from_step"),
    ("model.halt_exploration_prob=1.5", "model.halt_exploration_prob"),
    ("model.halt_exploration_prob=-0.1", "model.halt_exploration_prob"),
    ("model.y_layers=0", "model.y_layers"),
    ("model.mixer=conv", "model.mixer"),
    ("model=3", "model"),
    ("log=[]", "log"),
    ("unknown_key=1", "unknown_key"),
    ("model.unknown_key=1", "model.unknown_key"),
]


@pytest.mark.parametrize(("override", "field"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_out_of_range_value_is_rejected_naming_the_field(override, field):
    with pytest.raises(ConfigError) as info:
        load_train_config(None, [override])
    assert f"{field}: " in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["model.n=0"], "n must be at least 1"),
        (["model.latent=none"], "set n = 0"),
        (["model.y_layers=2"], "only used with separate_nets"),
        (["model.hidden_size=4", "model.num_heads=8"], "smaller than num_heads"),
        (["model.puzzle_emb_ndim=100", "model.puzzle_emb_len=0", "model.hidden_size=32", "model.num_heads=2"], None),
        (["model.puzzle_emb_ndim=100", "model.puzzle_emb_len=1", "model.hidden_size=32", "model.num_heads=2"],
         "does not fit"),
        (["answer_loss_from_step=17"], "past the last supervision step"),
        (["answer_loss_from_step=16"], None),
    ],
)
def test_cross_field_checks_remain(overrides, match):
    if match is None:
        load_train_config(None, overrides)
        return
    with pytest.raises(ConfigError, match=match):
        load_train_config(None, overrides)


@pytest.mark.parametrize(
    "override",
    ["lr=1e-3", "lr_min_ratio=0", "lr_min_ratio=1", "lr_warmup_steps=0", "beta1=0", "weight_decay=0",
     "puzzle_emb_lr=0", "ema_rate=0", "max_minutes=0.5", "checkpoint_minutes=null", "seed=123",
     "model.halt_exploration_prob=0", "model.halt_exploration_prob=1", "model.puzzle_emb_len=0", "name=run-1.b"],
)
def test_boundary_values_are_accepted(override):
    load_train_config(None, [override])


@pytest.mark.parametrize("cls", [TrainConfig, DataConfig, LogConfig, ModelConfig])
def test_the_defaults_pass_their_own_checks(cls):
    # pydantic does not check defaults when it builds them: check them as if a file gave them.
    assert cls.model_validate(cls().model_dump()) == cls()


def test_the_shipped_configs_are_the_repositorys_and_reachable_from_the_package():
    in_repository = sorted(p.relative_to(REPO / "configs") for p in (REPO / "configs").rglob("*.yaml"))
    in_package = sorted(p.relative_to(CONFIGS) for p in shipped_configs())
    assert CONFIGS == REPO / "trm" / "configs" and in_package == in_repository
    assert Path("cpu/sudoku-mlp.yaml") in in_package and len(in_package) >= 20


def test_a_config_named_as_in_the_repository_is_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_train_config("configs/cpu/sudoku-mlp.yaml").name == "sudoku-cpu"
    with pytest.raises(ConfigError, match=r"configs/cpu/nothing\.yaml: config file not found"):
        load_train_config("configs/cpu/nothing.yaml")


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "configs").rglob("*.yaml")) + sorted((REPO / "trm" / "pretrained").glob("*/train-config.yaml")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_shipped_yaml_loads(path):
    assert isinstance(load_train_config(path), TrainConfig)


def test_non_string_keys_are_errors(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("1: 2\nmodel: {3: 4}\n")
    with pytest.raises(ConfigError, match="Keys should be strings"):
        load_train_config(path)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_naming_itself_is_a_cycle(tmp_path):
    path = write(tmp_path, "a.yaml", "base: a.yaml\nlr: 1.0e-3\n")
    with pytest.raises(ConfigError, match="cycle") as info:
        load_train_config(path)
    assert str(path) in str(info.value)


def test_base_cycle_names_its_files(tmp_path):
    write(tmp_path, "a.yaml", "base: sub/b.yaml\n")
    write(tmp_path, "sub/b.yaml", "base: ../c.yaml\n")
    write(tmp_path, "c.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as info:
        load_train_config(tmp_path / "a.yaml")
    message = str(info.value)
    assert "a.yaml" in message and "b.yaml" in message and "c.yaml" in message


def test_diamond_of_bases_is_not_a_cycle(tmp_path):
    write(tmp_path, "root.yaml", "lr: 1.0e-3\n")
    write(tmp_path, "mid.yaml", "base: root.yaml\nseed: 3\n")
    path = write(tmp_path, "top.yaml", "base: mid.yaml\nname: top\n")
    config = load_train_config(path)
    assert (config.lr, config.seed, config.name) == (1e-3, 3, "top")


@pytest.mark.parametrize("value", ["5", "[a.yaml]", "{x: 1}", "''", "true"])
def test_base_must_be_a_file_name(tmp_path, value):
    path = write(tmp_path, "a.yaml", f"base: {value}\n")
    with pytest.raises(ConfigError, match="base: expected the path") as info:
        load_train_config(path)
    assert str(path) in str(info.value)


def test_missing_base_names_both_files(tmp_path):
    path = write(tmp_path, "a.yaml", "base: gone.yaml\n")
    with pytest.raises(ConfigError, match="not found") as info:
        load_train_config(path)
    assert str(path) in str(info.value) and str(tmp_path / "gone.yaml") in str(info.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"- lr\n- 1\n", "mapping"),
        (b"3\n", "mapping"),
        (b"\xff\xfe\x00binary\x80", "not a text file"),
        (b"lr: [1\n", "cannot be read as YAML"),
        (b"\x00\x01\x02", "cannot be read as YAML"),
    ],
)
def test_malformed_yaml_file(tmp_path, content, match):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as info:
        load_train_config(path)
    assert str(path) in str(info.value)


def test_yaml_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_train_config(tmp_path)
    write(tmp_path, "a.yaml", "base: sub\n")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        load_train_config(tmp_path / "a.yaml")


def test_missing_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "none.yaml")


def test_empty_yaml_gives_the_defaults(tmp_path):
    assert load_train_config(write(tmp_path, "a.yaml", "# nothing\n")) == TrainConfig()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["model=3", "model.T=2"], "'model' is not a section"),
        (["model..T=2"], "empty key"),
        (["lr"], "key=value"),
        (["=1"], "key=value"),
        (["lr=[1"], "not valid YAML"),
    ],
)
def test_malformed_overrides(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_train_config(None, overrides)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, "run.yaml", "name: x\n")
    assert main(["train", str(path), "lr=-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "lr: Input should be greater than 0 (got -1)" in err
