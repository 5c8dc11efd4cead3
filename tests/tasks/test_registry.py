"""The task registry: lookup by vocabulary and length, and tasks stay numpy-only."""

import subprocess
import sys
from pathlib import Path

import trm.tasks
from trm.tasks import ARC, MAZE, SUDOKU, TASKS, task_for


def test_tasks_are_recognised_by_vocabulary_and_length():
    assert task_for(11, 81) is SUDOKU
    assert task_for(6, 900) is MAZE and task_for(6, 25) is MAZE
    assert task_for(12, 900) is ARC
    assert task_for(6, 24) is None and task_for(11, 16) is None


def test_the_registry_is_keyed_by_each_task_s_name():
    assert {name: task.name for name, task in TASKS.items()} == {"sudoku": "sudoku", "maze": "maze", "arc": "arc"}
    assert [t.title for t in TASKS.values()] == ["Sudoku 9x9", "Maze", "ARC"]
    assert [t.has_rules for t in TASKS.values()] == [True, True, False]
    assert ARC.verify is None and ARC.validity is None


def test_tasks_import_no_torch():
    package = Path(trm.tasks.__file__).parent
    for path in package.glob("*.py"):
        assert "import torch" not in path.read_text(), path
    code = "import sys, trm.tasks; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
