"""Atomic writes of the directory trees this project produces: datasets and checkpoints.

A tree is built in a temporary directory beside its target, flushed to disk, then renamed
into place, so a failed or killed write never leaves a half-written tree where a complete
one is expected. Replacing an existing tree is allowed only when it holds what this project
writes (a dataset root or a model checkpoint) and nothing else, so a mistyped output path
never deletes a user's files.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trm.errors import DataError

# The on-disk dataset format (trm.data.format) names its arrays and splits with these.
ARRAY_FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
SPLITS = ("train", "test")

# What this project writes into an output directory. `--overwrite` (and the checkpoint writers,
# which always overwrite) replace a directory only when it holds these and nothing else. The
# checkpoint names repeat those of trm.model.checkpoint and trm.train.checkpoint, which this
# base layer must not import.
DATASET_EXTRA_FILES = ("maze.json", "test_puzzles.json")
CHECKPOINT_FILES = ("model.safetensors", "config.json", "train_state.pt", "checksums.json")
_SPLIT_FILE = re.compile(rf"[^/]+__({'|'.join(ARRAY_FIELDS)})\.npy|dataset\.json")


def _foreign_entries(directory: Path) -> list[str]:
    """Entries of `directory` that no dataset root or model checkpoint of ours holds, relative
    to it (a trailing '/' marks a directory); [] when it is empty or entirely ours."""
    entries = {p.name: p for p in directory.iterdir()}
    if "identifiers.json" in entries:  # a dataset root: identifiers.json, train/, test/, known JSON
        foreign = []
        for name, path in sorted(entries.items()):
            if name in SPLITS and path.is_dir() and not path.is_symlink():
                foreign += [f"{name}/{_entry_name(p)}" for p in sorted(path.iterdir()) if not _is_split_file(p)]
            elif name not in ("identifiers.json", *DATASET_EXTRA_FILES) or not path.is_file():
                foreign.append(_entry_name(path))
        return foreign
    if {"model.safetensors", "config.json"} <= entries.keys():  # a model or training checkpoint
        return [_entry_name(p) for n, p in sorted(entries.items()) if n not in CHECKPOINT_FILES or not p.is_file()]
    return [_entry_name(p) for _, p in sorted(entries.items())]


def _is_split_file(path: Path) -> bool:
    return _SPLIT_FILE.fullmatch(path.name) is not None and path.is_file()


def _entry_name(path: Path) -> str:
    return f"{path.name}/" if path.is_dir() and not path.is_symlink() else path.name


def _check_replaceable(target: Path, overwrite: bool) -> None:
    """Raise DataError unless `target` is absent, or `overwrite` is set and it is ours to replace."""
    try:
        if not (target.exists() or target.is_symlink()):
            return
    except OSError as e:
        raise DataError(f"{target}: cannot be checked as an output path ({e.strerror or e})") from None
    if not overwrite:
        raise DataError(f"{target}: already exists (pass --overwrite to replace it)")
    if not target.is_dir():
        raise DataError(f"{target}: is a file, not a directory; choose another output path")
    try:
        foreign = _foreign_entries(target)
    except OSError as e:
        raise DataError(f"{target}: cannot list its contents to check it may be replaced ({e.strerror or e})") from None
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DataError(
            f"{target}: is not a dataset or checkpoint this project wrote (it holds {shown}); refusing to "
            "replace it, which would delete them. Choose another output path or move those files away"
        )


def make_temporary_directory(target: Path) -> Path:
    """An empty directory beside `target`, with the permissions a plain mkdir would give.

    Creating it is also the test that the output can be written at all, so a bad path fails
    with a DataError naming it rather than an OSError from deep inside a build.
    """
    parent = _real_path(target).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{target}: cannot create the directory {parent} for it ({e.strerror or e})") from None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{_real_path(target).name}.tmp-", dir=parent))
    except OSError as e:
        raise DataError(f"{target}: cannot write in {parent} ({e.strerror or e})") from None
    _plain_mode(tmp, 0o777)
    return tmp


def _plain_mode(path: Path, bits: int) -> None:
    """Give a file or directory made by tempfile (0600, 0700) the permissions a plain open or
    mkdir would give under the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(bits & ~umask)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` through a temporary file renamed over it: readers see the old or the new text,
    never a part, and the file gets the permissions a plain write would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _plain_mode(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _real_path(target: Path) -> Path:
    """`target` made absolute (so that '.' has a name and a parent) with a symbolic link at its
    end followed: the temporary tree must sit beside the directory it replaces, and replacing
    the directory a link points to keeps the link."""
    target = Path(os.path.abspath(target))
    return target.resolve() if target.is_symlink() else target


def check_output(target: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise DataError now if `atomic_directory(target, overwrite)` would refuse or fail later.

    Builders call this first, so that an output path that exists, is not ours to replace or
    cannot be written fails in a second rather than after the whole (possibly long) build.
    """
    target = Path(target)
    _check_replaceable(target, overwrite)
    make_temporary_directory(target).rmdir()
    return target


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `target` that becomes `target` only on success.

    A build that fails or is interrupted leaves `target` as it was (absent, or the previous
    tree) and removes its temporary directory, so no half-written tree is ever mistaken for a
    complete one. With `overwrite`, an existing `target` is replaced only when this project
    wrote it (a dataset root or a model checkpoint, see `_foreign_entries`).
    """
    target = Path(target)
    _check_replaceable(target, overwrite)
    tmp = make_temporary_directory(target)
    try:
        yield tmp
        _check_replaceable(target, overwrite)  # again: the body may have run for hours
        _flush_tree(tmp)  # on disk before the rename: a power cut cannot leave a renamed but truncated tree
        _move_into_place(tmp, _real_path(target))
        _fsync(_real_path(target).parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _flush_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync(Path(directory, name))
        _fsync(Path(directory))


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target`. An existing `target` is renamed aside first (renaming onto a
    non-empty directory is not possible), put back if the new tree cannot take its place, and
    removed only once the new tree is in. Only a kill between the two renames leaves no tree at
    `target`; the old one is then beside it, named `.<name>.old-*`."""
    if not (target.exists() or target.is_symlink()):
        os.rename(tmp, target)
        return
    aside = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        try:
            os.rename(aside, target)
        except OSError as e:
            raise DataError(
                f"{target}: the new tree could not take its place and the previous one could not be put back "
                f"({e.strerror or e}); the previous one is intact at {aside}"
            ) from None
        raise
    shutil.rmtree(aside, ignore_errors=True)
