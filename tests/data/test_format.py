import json

import numpy as np
import pytest

from trm.data.format import (
    SetBuilder,
    Split,
    atomic_directory,
    make_metadata,
    read_dataset,
    read_identifiers,
    write_dataset,
)
from trm.errors import DataError

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
