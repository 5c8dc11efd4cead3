import functools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trm.cli import main
from trm.data.arc import encode_tasks, make_variants
from trm.data.arc_files import load_subset, load_tasks, resolve_subsets
from trm.data.format import read_dataset, read_identifiers
from trm.errors import ConfigError, DataError
from trm.tasks.arc import crop_prediction, encode_grid, parse_variant_name, variant_name
from trm.tasks.grids import DIHEDRAL_INVERSE, IDENTITY, Transform, dihedral, inverse_dihedral

# --- Grids and transforms -----------------------------------------------------------------


@st.composite
def grids(draw, max_size: int = 30) -> np.ndarray:
    rows = draw(st.integers(1, max_size))
    cols = draw(st.integers(1, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, 10, size=(rows, cols), dtype=np.uint8)


transforms = st.builds(
    lambda tid, perm: Transform(dihedral=tid, colours=(0, *perm)),
    st.integers(0, 7),
    st.permutations(range(1, 10)),
)


def test_dihedral_ids_are_the_reference_ones():
    grid = np.arange(6).reshape(2, 3)
    expected = [
        grid,
        np.rot90(grid),
        np.rot90(grid, 2),
        np.rot90(grid, 3),
        grid[:, ::-1],
        grid[::-1, :],
        grid.T,
        np.rot90(grid)[:, ::-1],
    ]
    for tid, want in enumerate(expected):
        np.testing.assert_array_equal(dihedral(grid, tid), want)
    assert len({dihedral(grid, tid).tobytes() + bytes(dihedral(grid, tid).shape) for tid in range(8)}) == 8
    assert DIHEDRAL_INVERSE == (0, 3, 2, 1, 4, 5, 6, 7)


@settings(deadline=None)
@given(grid=grids(), tid=st.integers(0, 7))
def test_every_dihedral_transform_is_undone_by_its_inverse(grid, tid):
    np.testing.assert_array_equal(inverse_dihedral(dihedral(grid, tid), tid), grid)
    np.testing.assert_array_equal(dihedral(inverse_dihedral(grid, tid), tid), grid)


@settings(deadline=None)
@given(grid=grids(), transform=transforms)
def test_every_transform_is_undone_by_its_inverse(grid, transform):
    moved = transform.apply(grid)
    assert moved.dtype == np.uint8
    np.testing.assert_array_equal(transform.invert().apply(moved), grid)
    np.testing.assert_array_equal(transform.apply(transform.invert().apply(grid)), grid)
    # Colour 0, the background, never moves; the others move as the map says.
    np.testing.assert_array_equal(moved == 0, dihedral(grid == 0, transform.dihedral))


@given(transform=transforms, task_id=st.from_regex(r"[0-9a-zA-Z_]{1,20}", fullmatch=True))
def test_variant_names_record_the_transform(transform, task_id):
    assert parse_variant_name(variant_name(task_id, transform)) == (task_id, transform)


def test_variant_names_match_the_reference_format():
    assert variant_name("007bbfb7", IDENTITY) == "007bbfb7"
    assert parse_variant_name("007bbfb7") == ("007bbfb7", IDENTITY)
    name = "007bbfb7|||t3|||0918273645"
    assert parse_variant_name(name) == ("007bbfb7", Transform(3, (0, 9, 1, 8, 2, 7, 3, 6, 4, 5)))
    assert variant_name(*parse_variant_name(name)) == name
    for bad in (
        "a|||t8|||0123456789",
        "a|||t1|||0123",
        "a|||t1|||0123456788",
        "a|||x1|||0123456789",
        "a|||t1",
    ):
        with pytest.raises(DataError, match="not of the form"):
            parse_variant_name(bad)


# --- The canvas ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (30, 30), (1, 30), (30, 1), (3, 7), (29, 30), (30, 29)])
def test_canvas_round_trip_at_the_edges(shape):
    grid = np.random.default_rng(0).integers(0, 10, size=shape, dtype=np.uint8)
    np.testing.assert_array_equal(crop_prediction(encode_grid(grid).ravel()), grid)


@settings(deadline=None)
@given(grid=grids())
def test_canvas_round_trip(grid):
    tokens = encode_grid(grid)
    assert tokens.shape == (30, 30) and tokens.dtype == np.uint8
    np.testing.assert_array_equal(crop_prediction(tokens), grid)


@settings(deadline=None)
@given(grid=grids(max_size=29), data=st.data())
def test_eos_marks_the_size_of_a_shifted_grid(grid, data):
    rows, cols = grid.shape
    top = data.draw(st.integers(0, 30 - rows))
    left = data.draw(st.integers(0, 30 - cols))
    tokens = encode_grid(grid, top, left)
    np.testing.assert_array_equal(tokens[top : top + rows, left : left + cols], grid + 2)
    eos = np.argwhere(tokens == 1)
    expected = [(top + rows, c) for c in range(left, left + cols) if top + rows < 30]
    expected += [(r, left + cols) for r in range(top, top + rows) if left + cols < 30]
    assert sorted(map(tuple, eos)) == sorted(expected)  # the corner between them stays PAD
    assert (tokens > 0).sum() == grid.size + len(expected)


def _crop_by_definition(canvas: np.ndarray) -> np.ndarray:
    """For each height, the widest all-colour top-left rectangle; the first of the largest wins."""
    best, best_area = (0, 0), 0
    for rows in range(1, 31):
        cols = max(c for c in range(31) if ((canvas[:rows, :c] >= 2) & (canvas[:rows, :c] <= 11)).all())
        if rows * cols > best_area:
            best, best_area = (rows, cols), rows * cols
    return canvas[: best[0], : best[1]] - 2


@settings(deadline=None, max_examples=50)
@given(seed=st.integers(0, 2**32 - 1))
def test_crop_takes_the_largest_top_left_rectangle_as_the_reference(seed):
    rng = np.random.default_rng(seed)
    canvas = rng.integers(2, 12, size=(30, 30))
    # Ragged right edges and stray PAD/EOS tokens, as an imperfect prediction has.
    for r in range(30):
        canvas[r, rng.integers(0, 31) :] = rng.integers(0, 2)
    canvas[rng.integers(0, 30, 5), rng.integers(0, 30, 5)] = rng.integers(0, 2)
    np.testing.assert_array_equal(crop_prediction(canvas), _crop_by_definition(canvas))


def test_crop_of_an_empty_prediction_is_empty():
    assert crop_prediction(np.zeros(900, dtype=np.uint8)).shape == (0, 0)


# --- Synthetic tasks on disk --------------------------------------------------------------


def _task(seed: int, num_train: int = 3, num_test: int = 1) -> dict:
    rng = np.random.default_rng(seed)

    def pair():
        shape = tuple(rng.integers(1, 8, size=2))
        return {"input": rng.integers(0, 10, shape).tolist(), "output": rng.integers(0, 10, shape).tolist()}

    return {"train": [pair() for _ in range(num_train)], "test": [pair() for _ in range(num_test)]}


def _write_kaggle(root: Path, subsets: dict[str, dict[str, dict]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for subset, tasks in subsets.items():
        challenges = {
            tid: {"train": t["train"], "test": [{"input": p["input"]} for p in t["test"]]} for tid, t in tasks.items()
        }
        solutions = {tid: [p["output"] for p in t["test"]] for tid, t in tasks.items()}
        (root / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(challenges))
        (root / f"arc-agi_{subset}_solutions.json").write_text(json.dumps(solutions))
    return root


SMALL = {
    "training": {f"train{k}": _task(k) for k in range(4)},
    "evaluation": {f"eval{k}": _task(100 + k, num_test=2) for k in range(3)},
}


@pytest.fixture
def small_arc(tmp_path) -> Path:
    return _write_kaggle(tmp_path / "arc", SMALL)


def _build(source: Path, num_aug: int = 4, seed: int = 42, subsets=("training", "evaluation"), eval_subsets=None):
    eval_subsets = ["evaluation"] if eval_subsets is None else eval_subsets
    tasks = load_tasks(source, subsets, eval_subsets)
    return encode_tasks(tasks, eval_subsets, num_aug=num_aug, seed=seed)


def _same_dataset(a, b) -> bool:
    return a.identifiers == b.identifiers and all(
        np.array_equal(getattr(a.sets[s], f), getattr(b.sets[s], f))
        for s in ("train", "test")
        for f in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
    )


def test_a_seed_gives_one_dataset(small_arc):
    assert _same_dataset(_build(small_arc), _build(small_arc))
    assert not _same_dataset(_build(small_arc), _build(small_arc, seed=7))


def test_a_directory_of_task_files_reads_like_the_kaggle_files(small_arc, tmp_path):
    for subset, tasks in SMALL.items():
        for tid, task in tasks.items():
            folder = tmp_path / "repo" / subset / ("nested" if tid.endswith("1") else "")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{tid}.json").write_text(json.dumps(task))
    by_file = _build(tmp_path / "repo")
    assert _same_dataset(by_file, _build(small_arc))
    test_puzzles = by_file.extra_json["test_puzzles.json"]
    assert test_puzzles == {tid: SMALL["evaluation"][tid] for tid in test_puzzles}


def test_duplicate_variants_are_dropped(tmp_path):
    uniform = {"input": [[0, 0], [0, 0]], "output": [[0, 0], [0, 5]]}
    blank = {"input": [[0, 0], [0, 0]], "output": [[0]]}
    # Colour 0 never moves, so the blank task has no variant but itself; the other one has only
    # the 8 symmetries of where the single 5 goes times the 9 colours it can take, less repeats.
    source = _write_kaggle(tmp_path, {"training": {"blank": {"train": [blank], "test": [blank]}}})
    dataset = _build(source, num_aug=50, subsets=["training"], eval_subsets=[])
    assert dataset.records["variants"] == {"blank": 1}
    pairs = ((np.array(uniform["input"], np.uint8), np.array(uniform["output"], np.uint8)),)
    variants = make_variants(pairs, 100, np.random.RandomState(0))
    outputs = {t.apply(pairs[0][1]).tobytes() for t in variants}
    assert len(variants) == len(outputs) == 4 * 9  # 4 corners x 9 colours, every one reached


def test_bad_names_and_subsets_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="evaluation subset 'evaluation' is not among"):
        resolve_subsets("arc-agi-1", ["training", "concept"])
    with pytest.raises(ConfigError, match="unknown ARC preset"):
        resolve_subsets("arc-agi-3")
    assert resolve_subsets("arc-agi-2") == (["training2", "evaluation2", "concept"], ["evaluation2"])
    source = _write_kaggle(tmp_path, {"training": {"same": _task(0)}, "evaluation": {"same": _task(1)}})
    with pytest.raises(DataError, match="same is in both subsets 'training' and 'evaluation'"):
        _build(source)


# --- Validation ---------------------------------------------------------------------------


def _broken(tmp_path: Path, change) -> Path:
    tasks = {"ok": _task(0), "bad": _task(1)}
    source = _write_kaggle(tmp_path / "broken", {"training": tasks})
    challenges = source / "arc-agi_training_challenges.json"
    solutions = source / "arc-agi_training_solutions.json"
    change(challenges, solutions)
    return source


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


BROKEN = {
    "ragged rows": (
        lambda c, s: _edit(c, lambda d: d["bad"]["train"][1].update(input=[[1, 2], [3]])),
        "challenges.json: task bad, train pair 1, input: row 1 has 1 cells but row 0 has 2",
    ),
    "31x31 grid": (
        lambda c, s: _edit(c, lambda d: d["bad"]["train"][0].update(output=[[1] * 31] * 31)),
        "challenges.json: task bad, train pair 0, output: grid is 31x31, larger than the 30x30 maximum",
    ),
    "colour 10": (
        lambda c, s: _edit(s, lambda d: d["bad"][0][0].__setitem__(0, 10)),
        "solutions.json: task bad, test output 0: row 0, column 0 holds 10, expected a colour 0..9",
    ),
    "empty grid": (
        lambda c, s: _edit(c, lambda d: d["bad"]["test"][0].update(input=[])),
        "challenges.json: task bad, test pair 0, input: expected a grid",
    ),
    "missing key": (
        lambda c, s: _edit(c, lambda d: d["bad"].pop("train")),
        "challenges.json: task bad: expected an object with 'train' and 'test'",
    ),
    "missing output": (
        lambda c, s: _edit(c, lambda d: d["bad"]["train"][2].pop("output")),
        "challenges.json: task bad, train pair 2: expected an object with 'input' and 'output'",
    ),
    "not JSON": (
        lambda c, s: c.write_text('{"ok": [1, 2'),
        "challenges.json: not valid JSON",
    ),
    "not UTF-8": (
        lambda c, s: c.write_bytes(b'{"ok": "\xff"}'),
        "challenges.json: cannot be read ('utf-8' codec can't decode",
    ),
    "nested too deeply": (  # json.loads raises RecursionError
        lambda c, s: c.write_text("[" * 100_000 + "]" * 100_000),
        "challenges.json: not an ARC file: its JSON nests too deeply",
    ),
    "nested grid": (
        lambda c, s: _edit(c, lambda d: d["bad"]["test"][0].update(input=[[[[[[1]]]]]])),
        "challenges.json: task bad, test pair 0, input: row 0, column 0 holds list [[[[1]]]]",
    ),
    "5000-digit integer": (  # json.loads raises ValueError: it exceeds the limit for integer conversion
        lambda c, s: (_edit(s, lambda d: d["bad"][0][0].__setitem__(0, 777)), _replace(s, "777", "9" * 5000)),
        "solutions.json: task bad, test output 0: row 0, column 0 holds an integer of 5000 digits, expected",
    ),
    "60-digit integer": (
        lambda c, s: _edit(c, lambda d: d["bad"]["train"][0]["input"][0].__setitem__(0, -(10**60))),
        "challenges.json: task bad, train pair 0, input: row 0, column 0 holds -100000000000000000000000000",
    ),
    "string colour": (
        lambda c, s: _edit(c, lambda d: d["bad"]["train"][0]["input"][0].__setitem__(0, "1")),
        'task bad, train pair 0, input: row 0, column 0 holds str "1", expected a colour 0..9',
    ),
    "no tasks": (
        lambda c, s: c.write_text("{}"),
        "challenges.json: expected a JSON object mapping task ids to tasks, got dict {}",
    ),
    "a directory": (
        lambda c, s: (c.unlink(), c.mkdir()),
        "challenges.json: cannot be read",
    ),
    "solutions lack a task": (
        lambda c, s: _edit(s, lambda d: d.pop("bad")),
        "solutions.json: does not match its challenges file: task bad is in",
    ),
    "solutions have an extra task": (
        lambda c, s: _edit(s, lambda d: d.update(other=[[[1]]])),
        "solutions.json: does not match its challenges file: task other is not in",
    ),
    "wrong number of test outputs": (
        lambda c, s: _edit(s, lambda d: d["bad"].append([[1]])),
        "solutions.json: task bad has 2 test outputs, expected 1",
    ),
    "training subset without solutions": (
        lambda c, s: s.unlink(),
        "challenges.json: task ok, test pair 0: has no 'output' and",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_bad_input_names_file_and_task(tmp_path, case):
    change, message = BROKEN[case]
    source = _broken(tmp_path, change)
    with pytest.raises(DataError) as error:
        load_subset(source, "training")
    assert message in str(error.value)
    assert str(source) in str(error.value)


def test_evaluation_without_solutions_gets_placeholders(tmp_path):
    source = _broken(tmp_path, lambda c, s: s.unlink())
    tasks = load_subset(source, "training", placeholders=True)
    assert [t.has_solutions for t in tasks] == [False, False]
    assert tasks[0].test[0][1].tolist() == [[0]]


def test_unreadable_sources(tmp_path):
    with pytest.raises(DataError, match="not found or not a directory"):
        load_subset(tmp_path / "nowhere", "training")
    with pytest.raises(DataError, match=r"no ARC subset 'concept'.*_concept_challenges\.json or a folder concept/"):
        load_subset(tmp_path, "concept")
    with pytest.raises(DataError, match="cannot be fetched"):
        load_subset("http://127.0.0.1:9/arc", "training")  # nothing listens on the discard port


# --- The command line ---------------------------------------------------------------------


def test_command_line_builds_a_readable_dataset(small_arc, tmp_path, capsys):
    out = tmp_path / "data" / "arc"
    argv = ["data", "arc", "--input", str(small_arc), "--output", str(out), "--num-aug", "3", "--quiet"]
    assert main([*argv, "--subsets", "training", "evaluation"]) == 0
    printed = capsys.readouterr().out
    assert "training         4 tasks" in printed and "evaluation       3 tasks  (evaluation)" in printed
    train, test = read_dataset(out, "train"), read_dataset(out, "test")
    assert train.metadata.vocab_size == 12 and train.metadata.seq_len == 900
    assert train.metadata.total_groups == 7 and test.metadata.total_groups == 3
    assert test.sets["all"].num_examples == 3 * 2 * 4
    names = read_identifiers(out)
    assert names[0] == "<blank>" and len(names) == train.metadata.num_puzzle_identifiers == 1 + 7 * 4
    assert json.loads((out / "test_puzzles.json").read_text()) == SMALL["evaluation"]

    assert main([*argv, "--subsets", "training", "evaluation"]) == 2
    assert "already exists (pass --overwrite" in capsys.readouterr().err


def test_a_failed_build_leaves_nothing_behind(tmp_path, capsys):
    source = _broken(tmp_path, BROKEN["colour 10"][0])
    out = tmp_path / "data" / "arc"
    out.parent.mkdir()
    argv = ["data", "arc", "--input", str(source), "--output", str(out), "--subsets", "training", "--quiet"]
    assert main([*argv, "--eval-subsets", "training"]) == 2
    error = capsys.readouterr().err
    assert "trm data: error:" in error and "task bad" in error and "Traceback" not in error
    assert list(out.parent.iterdir()) == []


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["data", "arc", "--help"])
    text = capsys.readouterr().out
    for option in ("--input", "--output", "--preset", "--subsets", "--eval-subsets", "--prefix", "--num-aug"):
        assert option in text
    assert text.count("e.g.") >= 10
    assert "trm data arc --input ../shared/data/arc --preset arc-agi-1 --output data/arc1 --num-aug 1000" in text


# --- The shared ARC-AGI-1 data ------------------------------------------------------------


def _count_tasks(path: Path) -> int:
    return len(json.loads(path.read_text()))


@functools.cache
def _build_arc_agi_1(source: Path):
    subsets, eval_subsets = resolve_subsets("arc-agi-1")
    tasks = load_tasks(source, subsets, eval_subsets)
    return source, tasks, encode_tasks(tasks, eval_subsets, num_aug=3)


@pytest.fixture
def arc_agi_1(shared):
    """The shared ARC-AGI-1 data with 3 variants per task, built once for all tests (about 2 s)."""
    return _build_arc_agi_1(shared("data", "arc"))


def test_arc_agi_1_task_counts(arc_agi_1):
    source, tasks, dataset = arc_agi_1
    counts = {subset: len(t) for subset, t in tasks.items()}
    assert counts == {"training": 400, "evaluation": 400, "concept": 160}
    assert counts == {s: _count_tasks(source / f"arc-agi_{s}_challenges.json") for s in counts}
    train, test = (dataset.sets[s] for s in ("train", "test"))
    assert train.num_groups == 960 and test.num_groups == 400
    variants = dataset.records["variants"]
    assert train.num_puzzles == sum(variants.values()) == len(dataset.identifiers) - 1
    pairs = {t.task_id: (len(t.train), len(t.test), t.subset) for ts in tasks.values() for t in ts}
    assert train.num_examples == sum(
        variants[tid] * (n_train + (n_test if subset != "evaluation" else 0))
        for tid, (n_train, n_test, subset) in pairs.items()
    )
    assert test.num_examples == sum(variants[t.task_id] * len(t.test) for t in tasks["evaluation"])


def test_arc_agi_1_test_split_holds_every_test_pair_in_every_variant(arc_agi_1):
    _, tasks, dataset = arc_agi_1
    test = dataset.sets["test"]
    originals = {t.task_id: t for t in tasks["evaluation"]}
    seen: dict[str, set[str]] = {tid: set() for tid in originals}
    for p, identifier in enumerate(test.puzzle_identifiers):
        name = dataset.identifiers[identifier]
        task_id, transform = parse_variant_name(name)
        task = originals[task_id]
        examples = range(test.puzzle_indices[p], test.puzzle_indices[p + 1])
        assert len(examples) == len(task.test)
        for e, (inp, out) in zip(examples, task.test):
            np.testing.assert_array_equal(transform.invert().apply(crop_prediction(test.inputs[e])), inp)
            np.testing.assert_array_equal(transform.invert().apply(crop_prediction(test.labels[e])), out)
        seen[task_id].add(name)
    for task_id, names in seen.items():
        assert len(names) == dataset.records["variants"][task_id] == 4  # the original and 3 distinct variants
    assert set(dataset.extra_json["test_puzzles.json"]) == set(originals)
    assert all(dataset.extra_json["test_puzzles.json"][tid] == originals[tid].to_json() for tid in originals)


def test_arc_agi_1_training_examples_are_shifted_but_one_per_variant(arc_agi_1):
    _, _, dataset = arc_agi_1
    train = dataset.sets["train"]
    at_corner = (train.inputs[:, 0] >= 2) & (train.labels[:, 0] >= 2)
    per_puzzle = np.add.reduceat(at_corner, train.puzzle_indices[:-1])
    assert (per_puzzle >= 1).all()
    assert at_corner.mean() < 0.5  # most examples moved


def test_arc_agi_1_variants_of_a_task_are_distinct(arc_agi_1):
    _, _, dataset = arc_agi_1
    train = dataset.sets["train"]
    for g in range(train.num_groups):
        puzzles = range(train.group_indices[g], train.group_indices[g + 1])
        # Training examples are shifted at random: compare the grids themselves.
        contents = {
            tuple(
                sorted(
                    _grid_of(train.inputs[e]).tobytes() + b"|" + _grid_of(train.labels[e]).tobytes()
                    for e in range(train.puzzle_indices[p], train.puzzle_indices[p + 1])
                )
            )
            for p in puzzles
        }
        assert len(contents) == len(puzzles)


def _grid_of(tokens: np.ndarray) -> np.ndarray:
    canvas = tokens.reshape(30, 30)
    rows, cols = np.nonzero(canvas >= 2)
    return canvas[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
