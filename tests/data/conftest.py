"""Fixtures shared by the data tests."""

from pathlib import Path

import pytest

from trm.data import format as data_format


@pytest.fixture
def disk_full_after_train(monkeypatch):
    """Call it to make writing a dataset fail with "disk full" once its train split is written."""
    write_split = data_format.write_split

    def write_train_then_fail(directory, split):
        write_split(directory, split)
        if Path(directory).name == "test":
            raise OSError("disk full")

    return lambda: monkeypatch.setattr(data_format, "write_split", write_train_then_fail)
