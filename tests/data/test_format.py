import json
import os
from pathlib import Path

import numpy as np
import pytest

from trm.cli import main
from trm.data.format import SetBuilder, Split, make_metadata, read_dataset, read_identifiers, write_dataset
from trm.errors import DataError
from trm.files import atomic_directory, check_output

# The fields of the reference's PuzzleDatasetMetadata (dataset/common.py), in its order.
REFERENCE_METADATA_FIELDS = [
    "pad_id",
    "ignore_label_id",
    "blank_identifier_id",
    "vocab_size",
    "seq_len",
    "num_puzzle_identifiers",
    "total_groups",
    "mean_puzzle_examples",
    "total_puzzles",
    "sets",
]
ARRAYS = ["inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices"]


def write_by_hand(root, split="train"):
    """A two-group dataset written the way the reference builders write one: np.save and json.dump."""
    directory = root / split
    directory.mkdir(parents=True)
    inputs = np.array([[1, 2, 0], [2, 1, 0], [3, 3, 3], [1, 1, 2]], dtype=np.uint8)
    arrays = {
        "inputs": inputs,
        "labels": inputs[:, ::-1].copy(),
        "puzzle_identifiers": np.array([1, 2, 0], dtype=np.int32),
        "puzzle_indices": np.array([0, 2, 3, 4], dtype=np.int32),  # puzzle 0 has two examples
        "group_indices": np.array([0, 2, 3], dtype=np.int32),  # group 0 has two variants
    }
    for name, array in arrays.items():
        np.save(directory / f"all__{name}.npy", array)
    metadata = {
        "pad_id": 0,
        "ignore_label_id": 0,
        "blank_identifier_id": 0,
        "vocab_size": 4,
        "seq_len": 3,
        "num_puzzle_identifiers": 3,
        "total_groups": 2,
        "mean_puzzle_examples": 4 / 3,
        "total_puzzles": 3,
        "sets": ["all"],
    }
    with open(directory / "dataset.json", "w") as f:
        json.dump(metadata, f)
    with open(root / "identifiers.json", "w") as f:
        json.dump(["<blank>", "a", "b"], f)
    return arrays, metadata


def tiny_split() -> Split:
    builder = SetBuilder(seq_len=3)
    builder.add_puzzle([[1, 2, 3], [3, 2, 1]], [[1, 1, 1], [2, 2, 2]], identifier=1)
    builder.add_puzzle([[2, 2, 2]], [[3, 3, 3]], identifier=2)
    builder.end_group()
    builder.add_puzzle([[1, 1, 1]], [[0, 1, 0]], identifier=0)
    sets = {"all": builder.build()}
    return Split(make_metadata(sets, vocab_size=4, seq_len=3, num_puzzle_identifiers=3), sets)


def test_a_dataset_written_by_hand_in_the_reference_format_reads_back(tmp_path):
    arrays, metadata = write_by_hand(tmp_path)
    split = read_dataset(tmp_path, "train")
    assert split.metadata.model_dump() == metadata
    assert list(split.sets) == ["all"]
    for name, array in arrays.items():
        assert np.array_equal(getattr(split.sets["all"], name), array)
    assert (split.sets["all"].num_groups, split.sets["all"].num_puzzles) == (2, 3)
    assert read_identifiers(tmp_path) == ["<blank>", "a", "b"]


def test_written_files_are_what_the_reference_loader_opens(tmp_path):
    splits = {"train": tiny_split(), "test": tiny_split()}
    root = write_dataset(tmp_path / "ds", splits, ["<blank>", "a", "b"])
    assert sorted(p.name for p in root.iterdir()) == ["identifiers.json", "test", "train"]
    for split in ("train", "test"):
        directory = root / split
        assert sorted(p.name for p in directory.iterdir()) == sorted(
            ["dataset.json"] + [f"all__{name}.npy" for name in ARRAYS]
        )
        metadata = json.loads((directory / "dataset.json").read_text())
        assert list(metadata) == REFERENCE_METADATA_FIELDS
        assert metadata["total_groups"] == 2 and metadata["total_puzzles"] == 3
        assert metadata["mean_puzzle_examples"] == pytest.approx(4 / 3)
        # The reference memory-maps inputs and labels and loads the index arrays whole.
        inputs = np.load(directory / "all__inputs.npy", mmap_mode="r")
        labels = np.load(directory / "all__labels.npy", mmap_mode="r")
        assert inputs.shape == labels.shape == (4, metadata["seq_len"])
        assert np.issubdtype(inputs.dtype, np.integer) and np.issubdtype(labels.dtype, np.integer)
        for name, length in (("puzzle_identifiers", 3), ("puzzle_indices", 4), ("group_indices", 3)):
            array = np.load(directory / f"all__{name}.npy")
            assert array.dtype == np.int32 and array.shape == (length,)
    assert json.loads((root / "identifiers.json").read_text()) == ["<blank>", "a", "b"]


def test_missing_dataset_json_names_the_file(tmp_path):
    write_by_hand(tmp_path)
    (tmp_path / "train" / "dataset.json").unlink()
    with pytest.raises(DataError, match=r"train/dataset\.json: not found"):
        read_dataset(tmp_path, "train")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"pad_id": 0}'])
def test_malformed_dataset_json_names_the_file(tmp_path, text):
    write_by_hand(tmp_path)
    (tmp_path / "train" / "dataset.json").write_text(text)
    with pytest.raises(DataError, match=r"train/dataset\.json"):
        read_dataset(tmp_path, "train")


def test_missing_array_names_the_file(tmp_path):
    write_by_hand(tmp_path)
    (tmp_path / "train" / "all__labels.npy").unlink()
    with pytest.raises(DataError, match=r"all__labels\.npy: missing"):
        read_dataset(tmp_path, "train")


@pytest.mark.parametrize(
    ("name", "array", "message"),
    [
        ("puzzle_indices", np.array([0, 2, 5, 4], dtype=np.int32), "puzzle_indices must rise from 0 to 4"),
        ("puzzle_indices", np.array([0, 2, 4], dtype=np.int32), "expected puzzles \\+ 1"),
        ("group_indices", np.array([0, 1, 2], dtype=np.int32), "group_indices must rise from 0 to 3"),
        ("labels", np.zeros((3, 3), dtype=np.uint8), "inputs .* and labels .* same shape"),
        ("inputs", np.full((4, 3), 9, dtype=np.uint8), "vocab_size"),
    ],
)
def test_inconsistent_arrays_name_the_set_and_the_array(tmp_path, name, array, message):
    write_by_hand(tmp_path)
    np.save(tmp_path / "train" / f"all__{name}.npy", array)
    with pytest.raises(DataError, match=message) as error:
        read_dataset(tmp_path, "train")
    assert "set 'all'" in str(error.value)


def test_missing_dataset_or_split_directory(tmp_path):
    with pytest.raises(DataError, match="dataset directory not found") as err:
        read_dataset(tmp_path / "nowhere", "train")
    assert "trm data TASK" in str(err.value)  # says how to build one
    write_by_hand(tmp_path)
    with pytest.raises(DataError, match="no 'test/' split"):
        read_dataset(tmp_path, "test")


def test_atomic_directory_leaves_nothing_behind_when_the_body_fails(tmp_path):
    target = tmp_path / "ds"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half-written.npy").write_text("x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_only_when_asked(tmp_path):
    target = tmp_path / "ds"
    write_dataset(target, {"train": tiny_split()}, ["<blank>"])
    with pytest.raises(DataError, match="already exists"):
        write_dataset(target, {"train": tiny_split()}, ["<blank>", "x"])
    write_dataset(target, {"train": tiny_split()}, ["<blank>", "x"], overwrite=True)
    assert read_identifiers(target) == ["<blank>", "x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


# --- Replacing an output directory (--overwrite) ------------------------------------------


def dataset(root: Path, name: str = "old", extra: dict | None = None) -> Path:
    """A small dataset whose identifiers.json says which write it came from."""
    return write_dataset(root, {"train": tiny_split(), "test": tiny_split()}, ["<blank>", name], extra, overwrite=True)


def beside(target: Path) -> list[str]:
    """What sits in the directory of `target`, besides it: temporary trees must not stay."""
    return sorted(p.name for p in target.parent.iterdir() if p.name != target.name)


def test_overwrite_refuses_a_directory_of_user_files_and_deletes_nothing(tmp_path):
    target = tmp_path / "out"
    (target / "photos").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    (target / "config.json").write_text("{}")  # one name of ours is not enough
    with pytest.raises(DataError, match=r"out: is not a dataset or checkpoint .*config\.json, notes\.txt, photos/"):
        write_dataset(target, {"train": tiny_split()}, ["<blank>"], overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "notes.txt", "photos"]
    assert (target / "notes.txt").read_text() == "mine" and beside(target) == []


@pytest.mark.parametrize("stray", ["README.md", "train/notes.txt", "test/sub/x.npy", "cache.json"])
def test_overwrite_refuses_a_dataset_holding_anything_else(tmp_path, stray):
    target = dataset(tmp_path / "ds", extra={"maze.json": {}})
    (target / stray).parent.mkdir(parents=True, exist_ok=True)
    (target / stray).write_text("mine")
    shown = stray.split("/sub")[0] + ("/sub/" if "/sub" in stray else "")
    with pytest.raises(DataError, match=f"holds {shown}"):
        dataset(target, "new")
    assert read_identifiers(target) == ["<blank>", "old"] and (target / stray).exists()


def test_overwrite_replaces_a_dataset_of_ours(tmp_path):
    target = dataset(tmp_path / "ds", extra={"maze.json": {"seed": 0}, "test_puzzles.json": {}})
    dataset(target, "new")
    assert read_identifiers(target) == ["<blank>", "new"]
    assert sorted(p.name for p in target.iterdir()) == ["identifiers.json", "test", "train"]
    assert beside(target) == []


def test_overwrite_replaces_checkpoints_as_the_training_loop_does(tmp_path):
    target = tmp_path / "step_00000010"
    for files in (["model.safetensors", "config.json"], ["model.safetensors", "config.json", "train_state.pt"]):
        with atomic_directory(target, overwrite=True) as tmp:
            for name in files:
                (tmp / name).write_text(name)
        assert sorted(p.name for p in target.iterdir()) == sorted(files)
    (target / "eval.json").write_text("{}")
    with pytest.raises(DataError, match=r"holds eval\.json"), atomic_directory(target, overwrite=True):
        pass
    assert (target / "train_state.pt").exists() and beside(target) == []


def test_overwrite_through_a_symbolic_link_keeps_the_link(tmp_path):
    real = dataset(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    dataset(link, "new")
    assert link.is_symlink() and read_identifiers(real) == ["<blank>", "new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_failure_while_building_leaves_the_old_dataset_whole(tmp_path, disk_full_after_train):
    target = dataset(tmp_path / "ds")
    disk_full_after_train()
    with pytest.raises(DataError, match=r"ds: writing the dataset failed \(disk full\)"):
        dataset(target, "new")
    assert read_identifiers(target) == ["<blank>", "old"] and read_dataset(target, "test").sets["all"].num_examples
    assert beside(target) == []


@pytest.mark.parametrize(
    ("failure", "raised"), [(OSError("device busy"), DataError), (KeyboardInterrupt(), KeyboardInterrupt)]
)
def test_a_failure_between_the_renames_puts_the_old_dataset_back(tmp_path, monkeypatch, failure, raised):
    target = dataset(tmp_path / "ds")
    rename = os.rename

    def fail_moving_the_new_tree_in(src, dst):
        if Path(src).name.startswith(".ds.tmp-"):  # the old tree has been renamed aside by now
            assert not target.exists()
            raise failure
        rename(src, dst)

    monkeypatch.setattr(os, "rename", fail_moving_the_new_tree_in)
    with pytest.raises(raised):
        dataset(target, "new")
    monkeypatch.undo()
    assert read_identifiers(target) == ["<blank>", "old"] and read_dataset(target, "train").sets["all"].num_examples
    assert beside(target) == []


def test_when_the_old_tree_cannot_be_put_back_the_error_says_where_it_is(tmp_path, monkeypatch):
    target = dataset(tmp_path / "ds")
    rename = os.rename

    def only_the_first_rename_works(src, dst):
        if Path(dst).name.startswith(".ds.old-"):
            return rename(src, dst)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "rename", only_the_first_rename_works)
    with pytest.raises(DataError, match=r"the previous one is intact at .*\.ds\.old-") as error:
        dataset(target, "new")
    monkeypatch.undo()
    kept = Path(str(error.value).rsplit(" at ", 1)[1])
    assert read_identifiers(kept) == ["<blank>", "old"] and beside(target) == [kept.name]


def test_an_output_path_that_cannot_be_written_fails_before_anything_is_built(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match=r"file\.txt/out: cannot create the directory .*file\.txt"):
        check_output(tmp_path / "file.txt" / "out")
    if Path("/proc/self").exists():  # /proc takes no new directories, not even from root
        with pytest.raises(DataError, match=r"/proc/trm-out: cannot write in /proc"):
            check_output("/proc/trm-out")
    check_output(dataset(tmp_path / "ds"), overwrite=True)  # ours: may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "file.txt"]


@pytest.mark.parametrize("task", ["sudoku", "maze", "arc"])
def test_the_command_line_checks_the_output_before_building(tmp_path, capsys, task):
    (tmp_path / "file.txt").write_text("x")
    # The input does not exist: the error must be about the output, found first.
    source = {"sudoku": ["--source", "csv"], "maze": ["--source", "csv"], "arc": []}[task]
    argv = ["data", task, *source, "--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "file.txt" / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "file.txt/o: cannot create the directory" in err and "Traceback" not in err


def test_the_command_line_overwrites_only_its_own_output(tmp_path, capsys):
    out = tmp_path / "maze"
    argv = ["data", "maze", "--source", "generate", "--size", "5", "--min-path-length", "3", "--train-count", "2"]
    argv += ["--test-count", "1", "--output", str(out), "--overwrite"]
    assert main([*argv, "--seed", "1"]) == 0
    assert main([*argv, "--seed", "2"]) == 0
    assert json.loads((out / "maze.json").read_text())["seed"] == 2
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*argv, "--seed", "3"]) == 2
    assert "holds notes.txt" in capsys.readouterr().err
    assert json.loads((out / "maze.json").read_text())["seed"] == 2 and (out / "notes.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maze"]
