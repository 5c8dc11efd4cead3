"""trm.files: atomic text writes keep the old or the new text and get a plain file's permissions."""

import os

import pytest

from trm.files import atomic_write_text


def test_an_atomic_write_replaces_the_text_with_plain_permissions(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("old")
    umask = os.umask(0o022)
    try:
        atomic_write_text(path, "new")
    finally:
        os.umask(umask)
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o644  # not tempfile's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary left


def test_a_failed_atomic_write_keeps_the_old_text_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    path.write_text("old")

    def fail(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
