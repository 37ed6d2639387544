"""Task sets: named suites (method §7), .npz files, reference pickles (method §6) and the safe unpickler."""

from __future__ import annotations

import builtins
import collections
import functools
import json
import os
import pickle
import re
import shlex
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evoplastic import safepickle
from evoplastic.envs import tasks
from evoplastic.safepickle import CorruptPickleError, UnsafePickleError

from _paperfiles import paper_file

REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"

# sha256 of (walls, start, goal) bytes of every suite, computed once with generator version 1.
# A change here means every published number on these suites changes: bump the generator version.
PINNED_DIGESTS = {
    "maze9": "bfc23329b89328d3a3b9b30e94c1aa2a76b1621bad1960b075730e64c26c3f70",
    "maze9-val": "d95f16601d538300aa07f2b3f41c5adce40ce1ef03a76ac894f04afb61cc8108",
    "maze15": "97ac956b5e8854cc8ab4c860e3ada88d51216bc6466a8393de5558bf915cbad9",
    "maze15-val": "5b587ab1de89e011950bcf7c7ce5af86d50dcec119e2a504ec2072bc5ea00d2b",
    "maze21": "562cb4c6e7de08ebc3310319fd97c6eb969b26b0f52a06aff8c0a72d06cedaa7",
    "maze21-val": "891f91c02f7da0e8fa09de7a9d7efabc4124603a0176c8f3a85c6ef39921aefa",
    "maze15-crowded": "1e935547a3bdeab2ba20fe10c327a3b6a762825d16c7900af0ec6c03802ff0b6",
    "maze15-crowded-val": "fd85806ff1cba057c13b02277ac4bf316b93b8d5d331ed03fd313a0c2b7aa40c",
    "maze15-spacious": "2b5d716bced131ec9cbf61f7528881fb2e7885c69c5f38b562f40148d941265c",
    "maze15-spacious-val": "c421dd74b6956417ce1e0de06f2b83a77d206f3abdacbb58107d1d3ce6bd70cf",
}

# method §7: (size, crowd ratio) of the five test suites.
SPEC7 = {"maze9": (9, 0.30), "maze15": (15, 0.35), "maze21": (21, 0.35),
         "maze15-crowded": (15, 0.45), "maze15-spacious": (15, 0.15)}

W = np.array([
    [1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, 0, 1, 0, 1],
    [1, 0, 1, 0, 1, 0, 1],
    [1, 0, 1, 0, 0, 0, 1],
    [1, 0, 1, 1, 1, 0, 1],
    [1, 0, 0, 0, 0, 0, 1],
    [1, 1, 1, 1, 1, 1, 1],
], dtype=np.uint8)


@functools.lru_cache(maxsize=None)
def cached_suite(name: str) -> tasks.TaskSet:
    return tasks.suite(name)


# --------------------------------------------------------------------------------------------
# Suites


def test_suites_follow_spec7() -> None:
    assert set(tasks.SUITES) == set(SPEC7) | {k + "-val" for k in SPEC7}
    for name, (size, crowd) in SPEC7.items():
        test, val = tasks.SUITES[name], tasks.SUITES[name + "-val"]
        assert (test.size, test.crowd_ratio, test.count) == (size, crowd, 2048)
        assert (val.size, val.crowd_ratio, val.count) == (size, crowd, 1024)
        assert test.seed != val.seed
    seeds = [s.seed for s in tasks.SUITES.values()]
    assert len(set(seeds)) == len(seeds)


def test_every_suite_has_a_pinned_digest() -> None:
    assert set(PINNED_DIGESTS) == set(tasks.SUITES)


@pytest.mark.parametrize("name", list(PINNED_DIGESTS))
def test_suite_digest_is_pinned(name: str) -> None:
    ts = cached_suite(name)
    spec = tasks.SUITES[name]
    assert (len(ts), ts.size) == (spec.count, spec.size)
    assert ts.meta["name"] == name and ts.meta["seed"] == spec.seed
    assert ts.meta["crowd_ratio"] == spec.crowd_ratio
    assert ts.walls.dtype == np.uint8 and ts.start.dtype == ts.goal.dtype == np.int16
    assert ts.digest() == PINNED_DIGESTS[name]


@pytest.mark.parametrize("name", list(PINNED_DIGESTS))
def test_suite_generation_is_reproducible_byte_for_byte(name: str) -> None:
    first, again = cached_suite(name), tasks.suite(name)
    for a, b in ((first.walls, again.walls), (first.start, again.start), (first.goal, again.goal)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_test_and_validation_suites_hold_different_tasks() -> None:
    test, val = cached_suite("maze9"), cached_suite("maze9-val")
    same = (test.walls[:1024] == val.walls).all((1, 2)) & (test.start[:1024] == val.start).all(1)
    assert same.mean() < 0.05  # 9x9 mazes do repeat by chance, but rarely


def test_digest_depends_on_tasks_not_metadata() -> None:
    ts = tasks.generate(8, 9, 0.3, seed=1, name="a")
    other = tasks.TaskSet(ts.walls.copy(), ts.start.copy(), ts.goal.copy(), {"name": "b"})
    assert other.digest() == ts.digest()
    moved = ts.goal.copy()
    moved[3] = ts.start[3]
    assert tasks.TaskSet(ts.walls, ts.start, moved).digest() != ts.digest()


def test_unknown_suite_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown task suite 'maze10'; known suites: maze9"):
        tasks.suite("maze10")


# --------------------------------------------------------------------------------------------
# .npz files


def test_npz_round_trip(tmp_path: Path) -> None:
    ts = tasks.generate(20, 11, 0.3, seed=3, name="eleven")
    path = tasks.save(ts, tmp_path / "sub" / "eleven.npz")
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == ["eleven.npz"]  # no temp
    back = tasks.load_npz(path)
    for a, b in ((ts.walls, back.walls), (ts.start, back.start), (ts.goal, back.goal)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back.digest() == ts.digest()
    for key, value in ts.meta.items():
        assert back.meta[key] == value
    assert back.meta["format"] == "evoplastic-tasks" and back.meta["format_version"] == 1
    assert back.meta["source"] == str(path)
    assert tasks.load(path).digest() == ts.digest()  # load() dispatches on the suffix


def _saved(tmp_path: Path) -> Path:
    return tasks.save(tasks.generate(16, 9, 0.3, seed=1), tmp_path / "good.npz")


def _truncate(frac: float):
    def corrupt(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * frac)])
    return corrupt


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(2000))


def _flip_compressed_walls(path: Path) -> None:
    """Damage the deflate stream of walls.npy (header intact)."""
    with zipfile.ZipFile(path) as z:
        offset = z.getinfo("walls.npy").header_offset
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[offset + 26: offset + 30])
    data = offset + 30 + name_len + extra_len
    for k in range(data + 8, data + 16):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))


def _rewrite(**arrays):
    def corrupt(path: Path) -> None:
        with np.load(path) as z:
            content = {k: z[k] for k in z.files}
        content.update(arrays)
        content = {k: v for k, v in content.items() if v is not None}
        with open(path, "wb") as f:
            np.savez(f, **content)
    return corrupt


@pytest.mark.parametrize("corrupt", [
    pytest.param(_truncate(0.0), id="empty"),
    pytest.param(_truncate(0.01), id="truncated-1pc"),
    pytest.param(_truncate(0.5), id="truncated-half"),
    pytest.param(_truncate(0.99), id="truncated-99pc"),
    pytest.param(_random_bytes, id="random-bytes"),
    pytest.param(_flip_compressed_walls, id="damaged-deflate-stream"),
    pytest.param(_rewrite(meta=np.array("{not json")), id="meta-not-json"),
    pytest.param(_rewrite(meta=np.array("[1, 2]")), id="meta-not-a-json-object"),
    pytest.param(_rewrite(meta=np.array([{"format": "evoplastic-tasks"}], dtype=object)), id="meta-pickled"),
    pytest.param(_rewrite(meta=np.array(json.dumps({"format": "other"}))), id="wrong-format"),
    pytest.param(_rewrite(meta=np.array(json.dumps({"format": "evoplastic-tasks", "format_version": 99}))),
                 id="future-version"),
    pytest.param(_rewrite(walls=np.zeros((16, 9, 9), np.uint8)), id="no-border"),
    pytest.param(_rewrite(start=np.zeros((16, 3), np.int16)), id="start-wrong-shape"),
])
def test_corrupt_npz_raises_value_error_naming_the_file(tmp_path: Path, corrupt) -> None:
    path = _saved(tmp_path)
    corrupt(path)
    with pytest.raises(ValueError) as info:
        tasks.load_npz(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("drop", ["walls", "start", "goal", "meta"])
def test_npz_missing_a_key(tmp_path: Path, drop: str) -> None:
    path = _saved(tmp_path)
    _rewrite(**{drop: None})(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: not an evoplastic task file (missing ['{drop}'])")):
        tasks.load_npz(path)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        tasks.load_npz(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        tasks.load_reference(tmp_path / "nope.dat")
    with pytest.raises(FileNotFoundError, match="no task suite or file"):
        tasks.load(str(tmp_path / "nope.npz"))


# --------------------------------------------------------------------------------------------
# Reference task files (method §6)


_PUBLISHED = {"maze9_c030_2048.dat": "paper-maze9", "maze15_c030_1024.dat": "paper-maze15"}


def _ref(name: str) -> Path:
    """A published task file from the cache (see _paperfiles); the 21x21 set is only in ../shared."""
    if name in _PUBLISHED:
        return paper_file(_PUBLISHED[name])
    path = REF_DIR / name
    if not path.exists():
        pytest.skip(f"reference file {path} absent (../shared/reference is not checked out)")
    return path


@pytest.mark.parametrize("name,count,size", [("maze9_c030_2048.dat", 2048, 9),
                                             ("maze15_c030_1024.dat", 1024, 15),
                                             ("maze21_c035_1024.dat", 1024, 21)])
def test_reference_task_files_load(name: str, count: int, size: int) -> None:
    path = _ref(name)
    ts = tasks.load_reference(path)
    assert (len(ts), ts.size) == (count, size)
    assert ts.walls.shape == (count, size, size) and ts.walls.dtype == np.uint8
    assert ts.walls[:, 0].all() and ts.walls[:, -1].all() and ts.walls[:, :, 0].all() and ts.walls[:, :, -1].all()
    raw = safepickle.load_one(path)
    for i in (0, count - 1):  # (row, column) kept as written
        assert tuple(ts.start[i]) == tuple(raw[i]["start"]) and tuple(ts.goal[i]) == tuple(raw[i]["goal"])
        assert np.array_equal(ts.walls[i], raw[i]["cell_walls"])
    assert ts.meta["source"] == str(path) and len(ts.meta["source_sha256"]) == 64
    assert tasks.load(path).digest() == ts.digest()


def _task_list() -> list:
    walls = W.astype(np.int32)
    return [collections.OrderedDict(start=(1, 1), goal=(5, 5), cell_walls=walls, cell_size=2.0),
            {"start": (1, 5), "goal": (3, 3), "cell_walls": walls, "cell_texts": np.zeros((7, 7), np.int64)}]


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_benign_task_pickles_load(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "tasks.dat"
    path.write_bytes(pickle.dumps(_task_list(), protocol=protocol))
    ts = tasks.load_reference(path)
    assert len(ts) == 2 and ts.start.tolist() == [[1, 1], [1, 5]] and np.array_equal(ts.walls[1], W)


def test_malformed_reference_tasks(tmp_path: Path) -> None:
    path = tmp_path / "bad.dat"
    for obj, match in (({"start": (1, 1)}, "non-empty list of dicts"), ([], "non-empty list of dicts"),
                       ([{"start": (1, 1), "goal": (5, 5)}], "malformed reference task"),
                       ([dict(_task_list()[0], start=(2, 2))], "task 0: the start cell is a wall")):
        path.write_bytes(pickle.dumps(obj, protocol=3))
        with pytest.raises(ValueError, match=re.escape(str(path))) as info:
            tasks.load_reference(path)
        assert re.search(match, str(info.value)), str(info.value)


# --------------------------------------------------------------------------------------------
# Malicious and corrupt pickles


class _Reduce:
    """An object that pickles as ``func(*args)``."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _malicious(marker: Path) -> list[tuple[object, str]]:
    """(payload, regex of the global it needs): each payload creates ``marker`` if it is ever run."""
    code = f"open({str(marker)!r}, 'w').close()"
    builtin = r"(builtins|__builtin__)"  # protocols 0-2 write Python 2 module names
    return [
        (_Reduce(os.system, f"touch {shlex.quote(str(marker))}"), rf"{os.system.__module__}\.system"),
        (_Reduce(builtins.open, str(marker), "w"), rf"{builtins.open.__module__}\.open"),
        (_Reduce(builtins.exec, code), rf"{builtin}\.exec"),
        (_Reduce(builtins.eval, code), rf"{builtin}\.eval"),
        # hidden inside an otherwise valid task list
        ([dict(cell_texts=_Reduce(os.system, f"touch {shlex.quote(str(marker))}"), **_task_list()[0])],
         rf"{os.system.__module__}\.system"),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("protocol", [0, 3, 5])
def test_malicious_pickle_is_refused_without_side_effects(tmp_path: Path, case: int, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload, global_name = _malicious(marker)[case]
    path = tmp_path / "evil.dat"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    for load in (tasks.load_reference, safepickle.load_one, safepickle.load_all):
        with pytest.raises(UnsafePickleError, match=f"'{global_name}'") as info:
            load(path)
        assert str(path) in str(info.value)
        assert not marker.exists()


@pytest.mark.parametrize("module,name", [("subprocess", "check_call"), ("numpy", "load"),
                                         ("numpy.testing._private.utils", "runstring"),
                                         ("collections", "namedtuple"), ("pickle", "loads")])
def test_hand_crafted_globals_are_refused(tmp_path: Path, module: str, name: str) -> None:
    path = tmp_path / "evil.dat"
    path.write_bytes(f"c{module}\n{name}\n(S'x'\ntR.".encode())  # protocol 0: GLOBAL, call with 'x'
    with pytest.raises(UnsafePickleError, match=re.escape(f"'{module}.{name}'")):
        safepickle.load_all(path)


def test_a_later_malicious_pickle_in_a_multi_pickle_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt.dat"
    evil = _Reduce(os.system, f"touch {shlex.quote(str(marker))}")
    path.write_bytes(pickle.dumps([np.zeros(3)], protocol=3) + pickle.dumps(evil, protocol=3))
    assert len(safepickle.load_all(path, max_objects=1)) == 1
    with pytest.raises(UnsafePickleError, match="system"):
        safepickle.load_all(path)
    assert not marker.exists()


def test_truncated_reference_file_is_corrupt(tmp_path: Path) -> None:
    src = REF_DIR / "maze9_c030_2048.dat"
    data = src.read_bytes() if src.exists() else pickle.dumps(_task_list() * 50, protocol=3)
    path = tmp_path / "cut.dat"
    for frac in (0.001, 0.5, 0.999):
        path.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(CorruptPickleError, match=re.escape(str(path))):
            tasks.load_reference(path)
    path.write_bytes(b"")
    with pytest.raises(CorruptPickleError, match="empty file"):
        tasks.load_reference(path)
    path.write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(CorruptPickleError):
        tasks.load_reference(path)


# --------------------------------------------------------------------------------------------
# TaskSet helpers


def _hand_set() -> tasks.TaskSet:
    return tasks.TaskSet(np.stack([W, W, W]), np.array([[1, 1], [1, 5], [5, 1]], np.int16),
                         np.array([[5, 5], [3, 3], [1, 3]], np.int16), {"name": "hand", "count": 3})


def test_render_shows_start_goal_and_walls() -> None:
    ts = _hand_set()
    assert ts.render(1) == "\n".join([
        "# # # # # # #",
        "# . . . # S #",
        "# . # . # . #",
        "# . # G . . #",
        "# . # # # . #",
        "# . . . . . #",
        "# # # # # # #",
    ])
    assert ts.render(0).splitlines()[1] == "# S . . # . #" and ts.render(0).splitlines()[5] == "# . . . . G #"
    with pytest.raises(IndexError, match="out of range"):
        ts.render(3)


def test_head_takes_a_prefix() -> None:
    ts = tasks.generate(50, 9, 0.3, seed=8)
    h = ts.head(7)
    assert len(h) == 7 and h.meta["count"] == 7 and h.meta["seed"] == 8
    assert np.array_equal(h.walls, ts.walls[:7]) and np.array_equal(h.start, ts.start[:7])
    assert np.array_equal(h.goal, ts.goal[:7])
    assert h.digest() == tasks.generate(7, 9, 0.3, seed=8).digest()
    assert ts.head(None) is ts and ts.head(50) is ts and len(ts.head(99)) == 50
    with pytest.raises(ValueError, match="count must be >= 1"):
        ts.head(0)


def test_taskset_validates_its_arrays() -> None:
    bad = np.stack([W, W])
    bad[0, 0, 2] = 0
    with pytest.raises(ValueError, match="border"):
        tasks.TaskSet(bad, np.ones((2, 2), np.int16), np.full((2, 2), 5, np.int16))


def test_protocol2_task_pickle_loads_and_codecs_misuse_is_refused(tmp_path: Path) -> None:
    import pickle

    from evoplastic import safepickle

    walls = np.ones((7, 7), np.int32)
    walls[1:-1, 1:-1] = 0
    good = tmp_path / "p2.dat"
    good.write_bytes(pickle.dumps([{"start": (1, 1), "goal": (5, 5), "cell_walls": walls}], protocol=2))
    ts = tasks.load_reference(good)
    assert len(ts) == 1 and np.array_equal(ts.walls[0], walls)
    # _codecs.encode is allowed only as str -> latin1 bytes (what protocols 0-2 use for arrays)
    bad = tmp_path / "codecs.dat"
    bad.write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01X\x06\x00\x00\x00base64q\x02\x86q\x03Rq\x04.")
    with pytest.raises(safepickle.UnsafePickleError, match="latin1"):
        safepickle.load_all(bad)


def test_a_slice_of_a_suite_or_file_is_those_tasks(tmp_path: Path) -> None:
    """``NAME[first:stop]``: e.g. maze9-val[512:], the validation tasks a run validating on the
    first 512 never saw."""
    whole = tasks.suite("maze9-val")
    rest = tasks.load("maze9-val[512:]")
    assert len(rest) == 512 and rest.name == "maze9-val[512:]"
    for a, b in ((rest.walls, whole.walls[512:]), (rest.start, whole.start[512:]), (rest.goal, whole.goal[512:])):
        np.testing.assert_array_equal(a, b)
    assert tasks.load("maze9-val[:512]").digest() == whole.head(512).digest()
    mid = tasks.load("maze9-val[10:13]")
    assert len(mid) == 3 and mid.render(0) == whole.render(10)
    path = tasks.save(whole.head(20), tmp_path / "twenty.npz")
    assert tasks.load(f"{path}[5:]").digest() == tasks.suite("maze9-val").slice(5, 20).digest()
    for bad in ("maze9-val[512:2000]", "maze9-val[7:7]", "maze9-val[1024:]"):
        with pytest.raises(tasks.TaskIndexError, match=re.escape(bad.split("[")[0]) + r".*0 <= first < stop <= 1024"):
            tasks.load(bad)
    with pytest.raises(FileNotFoundError, match="no task suite or file 'maze10"):
        tasks.load("maze10[0:5]")
