"""Reading the puzzle `trm solve` is given: a Sudoku string, or the path of a puzzle file.

A file holding JSON is an ARC task (or a Kaggle challenges file), one with '#', 'S' or 'G' a
maze, anything else a Sudoku; the task parses it (`trm.tasks`). Every error says what was
expected, without a traceback.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from trm.errors import DataError
from trm.tasks import MAZE, SUDOKU, Puzzle
from trm.tasks.arc import read_task_text
from trm.tasks.sudoku import SEQ_LEN

MAX_PUZZLE_FILE_BYTES = 64 * 2**20  # ARC's largest challenges files are a few MB
SUDOKU_STRING = "81 characters: digits 1-9 and '.' or '0' for blanks"


def _shown(text: str, limit: int = 60) -> str:
    """`text` as an error message shows it: shortened, and quoted if it holds odd characters."""
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return short if short.isprintable() and short.strip() == short and short else repr(short)


def _path_kind(path: Path) -> str | None:
    """What `path` names: "file", "directory" or "other" (a device, a pipe); None where nothing
    is, or where the text cannot be a file name at all (too long, a NUL byte)."""
    try:
        mode = path.stat().st_mode
    except ValueError:
        return None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL):
            return None
        raise DataError(f"{_shown(str(path))}: cannot be read ({e.strerror or e})") from None
    return "file" if stat.S_ISREG(mode) else "directory" if stat.S_ISDIR(mode) else "other"


def _read_text(path: Path) -> str:
    """A puzzle file's text (UTF-8, a byte-order mark allowed), or a DataError saying why not."""
    try:
        size = path.stat().st_size
        if size > MAX_PUZZLE_FILE_BYTES:
            raise DataError(
                f"{path}: is {size / 2**20:.0f} MiB; a puzzle file (a maze, an ARC task or challenges JSON) is "
                f"expected to be at most {MAX_PUZZLE_FILE_BYTES // 2**20} MiB"
            )
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: is not a text file (byte {e.start} is not UTF-8); expected a maze text file, a Sudoku "
            "string or an ARC task JSON"
        ) from None
    if "\0" in text:
        raise DataError(f"{path}: is a binary file (it holds NUL bytes); expected a maze text file or an ARC task JSON")
    return text


def _puzzles_in_file(path: Path, task_id: str | None) -> list[Puzzle]:
    content = _read_text(path)
    if path.suffix.lower() == ".json" or content.lstrip().startswith(("{", "[")):
        return read_task_text(content, path, task_id)
    if any(ch in content for ch in "#SG"):
        return [MAZE.parse(content, str(path))]
    digits = "".join(content.split())
    if len(digits) != SEQ_LEN:
        raise DataError(
            f"{path}: holds no puzzle this command reads: a Sudoku ({SUDOKU_STRING}; this file has "
            f"{len(digits)} characters that are not spaces), a maze (N lines of N characters '#', ' ' or '.', "
            "one 'S' and one 'G') or an ARC task JSON"
        )
    return [SUDOKU.parse(digits, str(path))]


def read_puzzles(source: str | os.PathLike | Puzzle, task_id: str | None = None) -> list[Puzzle]:
    """Puzzles from a Sudoku string, a maze or Sudoku text file, or an ARC task JSON file."""
    if isinstance(source, Puzzle):
        return [source]
    text = str(source)
    if not text.strip():  # Path("") would be the current directory
        raise DataError(f"the puzzle is empty; expected a Sudoku string ({SUDOKU_STRING}) or a puzzle file's path")
    path = Path(text)
    kind = _path_kind(path)
    if kind == "file":
        return _puzzles_in_file(path, task_id)
    if kind is not None:
        raise DataError(
            f"{_shown(text)}: is a {'directory' if kind == 'directory' else 'special file, not a regular one'}; "
            "expected a puzzle file (a maze text file, an ARC task JSON) or a Sudoku string"
        )
    if path.suffix.lower() in (".json", ".txt") or "/" in text or os.sep in text:
        raise DataError(f"{_shown(text)}: file not found")
    if len(text.strip()) != SEQ_LEN:
        raise DataError(
            f"{_shown(text)}: is neither a file nor a Sudoku string: it has {len(text.strip())} characters, expected "
            f"{SUDOKU_STRING} (a maze or an ARC task is given as the path of its file)"
        )
    puzzle = SUDOKU.parse(text, "Sudoku string")
    puzzle.name = text.strip()
    return [puzzle]
