"""Every input checked, every fault survived. One test (or case) per example of a kind.

| kind                                             | tests here                                        |
|--------------------------------------------------|---------------------------------------------------|
| 1 stop at any moment, resume, true messages      | test_killed_before_first_checkpoint_resumes_exactly, test_sigterm_at_start_says_what_was_kept |
| 2 exclusive run/sweep directory                  | test_second_command_refuses_naming_the_holder, test_lock_of_a_dead_process_is_taken_over |
| 3 whole config validated before writing          | test_bad_config_is_one_line_and_writes_nothing (cases), test_config duplicate keys |
| 4 bounded inputs                                 | test_bounded_npz (cases), test_pickle_claiming_huge_array, bad-config cases |
| 5 OS errors one line, checkpoint intact          | test_file_size_limit_while_checkpointing_is_one_line_and_resumable, test_run_dir_path_is_a_file |
| 6 --address auto without a cluster               | test_address_auto_without_cluster_writes_nothing |
| 7 reuse checked                                  | test_sweep_rerun_with_other_settings_is_refused_and_stale_tests_redone |
| 8 unsolvable task files                          | test_unsolvable_task_files_name_the_task (cases)  |
| 9 metrics rewritten atomically, torn line        | test_torn_metrics_line_is_dropped_on_resume       |
| 10 edited config.yaml, resume --generations N    | test_edited_config_is_named_and_generations_written |
| 11 bugs keep their traceback                     | test_a_bug_keeps_its_traceback                    |
| 12 umask                                         | test_atomic_writes_respect_the_umask              |
| 13 huge mazes                                    | bad-config case tasks.size 101, test_tasks_make_refuses_huge_mazes |
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evoplastic import checkpoint as ckpt
from evoplastic.cli import main
from evoplastic.dirlock import DirLock
from evoplastic.errors import UserError

TINY = (Path(__file__).resolve().parents[1] / "experiments" / "tiny.yaml").read_text()  # 6 generations in a few seconds
CLI = [sys.executable, "-m", "evoplastic.cli"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def reference(tiny: Path) -> Path:
    """The tiny config trained without interruption (6 generations)."""
    d = tiny.parent / "ref"
    assert main(["train", str(tiny), "--run-dir", str(d)]) == 0
    return d


def state(run_dir: Path) -> tuple[dict, dict, list]:
    arrays, meta, _ = ckpt.load_latest(run_dir)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return arrays, meta, [{k: v for k, v in r.items() if k not in ("seconds", "agent_steps_per_s")} for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    (xa, ma, ra), (xb, mb, rb) = state(a), state(b)
    assert sorted(xa) == sorted(xb) and all(np.array_equal(xa[k], xb[k]) for k in xa)
    assert ma == mb and ra == rb


def error_line(capsys: pytest.CaptureFixture) -> str:
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("evoplastic: error:")]
    assert len(err) == 1, err
    return err[0]


# -- 1: stop at any moment -------------------------------------------------------------------------

@pytest.mark.slow
def test_killed_before_first_checkpoint_resumes_exactly(tiny: Path, reference: Path, tmp_path: Path) -> None:
    d = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "train", str(tiny), "--run-dir", str(d)], stderr=subprocess.DEVNULL)
    while not (d / "config.yaml").exists():
        assert proc.poll() is None
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    assert not ckpt.list_checkpoints(d), "the kill should come before the first checkpoint"
    res = subprocess.run([*CLI, "resume", str(d)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "no checkpoint yet" in res.stderr
    assert_same_run(reference, d)


@pytest.mark.slow
def test_sigterm_at_start_says_what_was_kept(tiny: Path, tmp_path: Path) -> None:
    d = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "train", str(tiny), "--run-dir", str(d)], stderr=subprocess.PIPE, text=True)
    while not (d / ".lock").exists():
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("evoplastic: stopped by SIGTERM; ") and "Traceback" not in err
    gens = [int(p.name[5:12]) for p in ckpt.list_checkpoints(d)] if d.exists() else []
    if gens:
        assert f"generation {max(gens)} is checkpointed" in last
    elif d.exists() and (d / "config.yaml").exists():
        assert "no generation was checkpointed yet" in last
    else:
        assert "nothing was written" in last and not d.exists()


# -- 2: exclusive ownership ------------------------------------------------------------------------

def _holder(d: Path) -> subprocess.Popen:
    """Another process holding ``d``'s lock until killed."""
    code = ("import sys, time; from evoplastic.dirlock import DirLock\n"
            f"with DirLock({str(d)!r}):\n    print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_command_refuses_naming_the_holder(tiny: Path, tmp_path: Path, capsys) -> None:
    d = tmp_path / "run"
    proc = _holder(d)
    try:
        assert main(["train", str(tiny), "--run-dir", str(d), "--set", "seed=1"]) == 2
        line = error_line(capsys)
        assert f"this run directory is in use by PID {proc.pid} on " in line
        assert not (d / "config.yaml").exists() and not (d / "metrics.csv").exists()
        assert main(["sweep", str(_sweep_file(tmp_path, tiny, 1)), "--out", str(d)]) == 2
        assert "this sweep directory is in use by PID" in error_line(capsys)
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path, caplog) -> None:
    d = tmp_path / "run"
    proc = _holder(d)
    proc.kill()  # dies holding the lock: the file still names it
    proc.wait()
    assert str(proc.pid) in (d / ".lock").read_text()
    with DirLock(d):
        assert f'"pid": {os.getpid()}' in (d / ".lock").read_text()
        with pytest.raises(UserError, match=f"in use by PID {os.getpid()}"):
            DirLock(d).__enter__()
    assert f"took over the lock left by PID {proc.pid}" in caplog.text
    assert (d / ".lock").read_text() == ""  # a clean release names no holder


# -- 3, 4, 13: the whole experiment checked before anything is written ----------------------------

@pytest.mark.parametrize("edit, needle", [
    (lambda t: "", "the file is empty"),
    (lambda t: t + "seed: 5\n", "line 11: duplicate key 'seed' (first on line 2)"),
    (lambda t: t + "strategy: {popsize: 8}\n", "line 11: duplicate key 'strategy' (first on line 7)"),
    (lambda t: t.replace("seed: 0", "seed: -1"), "seed: must be >= 0, got -1"),
    (lambda t: t.replace("init_std: 0.05", "init_std: .inf"), "strategy.init_std: expected a finite number"),
    (lambda t: t.replace("init_std: 0.05", "init_std: 1.0e+39"), "within float32 range"),
    (lambda t: t.replace("size: 9", "size: 5"), "tasks.size: maze size must be an odd integer >= 7"),
    (lambda t: t.replace("size: 9", "size: 101"), "tasks.size: maze size 101 is over the limit of 51"),
    (lambda t: t.replace("popsize: 8", "popsize: 1000000000"), "strategy.popsize: must be in 2..100,000 (limit)"),
    (lambda t: t.replace("hidden: 16", "hidden: 100000"), "model.hidden: must be in 1..4096 (limit)"),
    (lambda t: t.replace("hidden: 16", "hidden: 4096").replace("popsize: 8", "popsize: 20000"),
     "over the limit of 4 GiB"),
    (lambda t: t.replace("suite: maze9-val", "suite: nowhere.npz"), "no task suite or file 'nowhere.npz'"),
    (lambda t: t + "x: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"x{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(6)),
     "more than 100,000 values once aliases are expanded"),
])
def test_bad_config_is_one_line_and_writes_nothing(edit, needle: str, tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(edit(TINY))
    d = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(d)]) == 2
    assert needle in error_line(capsys)
    assert not d.exists()


def test_sweep_file_duplicate_key(tiny: Path, tmp_path: Path, capsys) -> None:
    sw = tmp_path / "sw.yaml"
    sw.write_text(f"base: {tiny}\ngrid: {{seed: [0]}}\nset: {{generations: 1}}\ngrid: {{seed: [1]}}\n")
    assert main(["sweep", str(sw), "--out", str(tmp_path / "out")]) == 2
    assert "line 4: duplicate key 'grid' (first on line 2)" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_tasks_make_refuses_huge_mazes(tmp_path: Path, capsys) -> None:
    t0 = time.perf_counter()
    assert main(["tasks", "make", "--size", "101", "--crowd", "0.3", "--count", "2", "--seed", "0",
                 "--out", str(tmp_path / "t.npz")]) == 2
    assert "over the limit of 51" in error_line(capsys) and time.perf_counter() - t0 < 5


def _npy(shape_text: str, payload: bytes) -> bytes:
    header = ("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text + ", }").ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + payload


def test_bounded_npz(tmp_path: Path, capsys) -> None:
    from evoplastic import safenpz

    claim = tmp_path / "claim.npz"  # 524 bytes that claim 2^33 floats (32 GiB)
    with zipfile.ZipFile(claim, "w") as z:
        z.writestr("genome.npy", _npy("(8589934592,)", b"\0" * 64))
        z.writestr("meta.npy", _npy("()", b"\0" * 4))
    assert main(["eval", str(claim), "--tasks", "maze9", "--count", "2"]) == 2
    assert "claims shape (8589934592,) (32 GiB), over the limit of 1 GiB" in error_line(capsys)
    bomb = tmp_path / "bomb.npz"  # 8 MiB of zeros deflated to a few KiB; read under a 1 MiB limit
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("genome.npy", _npy("(2097152,)", b"\0" * (8 << 20)))
    assert bomb.stat().st_size < 64 << 10
    with pytest.raises(UserError, match=r"inflates to 8 MiB, over the limit of 1 MiB for a genome file"):
        safenpz.read(bomb, "genome file", max_bytes=1 << 20)
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as z:  # pickled objects are refused, not loaded
        z.writestr("genome.npy", _npy("(1,)", b"").replace(b"'<f4'", b"'|O' "))
    with pytest.raises(UserError, match="holds pickled objects"):
        safenpz.read(tmp_path / "obj.npz", "genome file")


def test_pickle_claiming_huge_array(tmp_path: Path) -> None:
    from evoplastic import safepickle
    from evoplastic.safepickle import UnsafePickleError

    # _reconstruct(ndarray, (2**40,), b"b"): 50 bytes asking for a 1 TiB array
    data = (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n"
            b"(\x8a\x06\x00\x00\x00\x00\x00\x01tC\x01btR.")
    (tmp_path / "x.dat").write_bytes(data)
    with pytest.raises(UnsafePickleError, match=r"x\.dat: an array of shape \(1099511627776,\) .* exceeds the "
                                                r"limit of 1 GiB"):
        safepickle.load_one(tmp_path / "x.dat")


# -- 5: file-system errors -------------------------------------------------------------------------

@pytest.mark.slow
def test_file_size_limit_while_checkpointing_is_one_line_and_resumable(tiny: Path, reference: Path,
                                                                        tmp_path: Path) -> None:
    d = tmp_path / "run"
    assert main(["train", str(tiny), "--run-dir", str(d), "--generations", "2"]) == 0
    before = sorted(p.name for p in ckpt.list_checkpoints(d))

    def small_files() -> None:  # the issue's `ulimit -f 20; trap '' XFSZ`
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 512, 20 * 512))

    res = subprocess.run([*CLI, "resume", str(d), "--generations", "6"], capture_output=True, text=True,
                         timeout=300, preexec_fn=small_files)
    errs = [x for x in res.stderr.splitlines() if x.startswith("evoplastic: error:")]
    assert res.returncode == 2 and len(errs) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "File too large" in errs[0] and "ulimit -f" in errs[0]
    assert sorted(p.name for p in ckpt.list_checkpoints(d)) == before
    assert not list(d.rglob("*.tmp"))
    assert main(["resume", str(d), "--generations", "6"]) == 0
    assert_same_run(reference, d)


@pytest.mark.parametrize("text, message", [
    ("[[0, 1], [", "not a YAML list"),
    ("8", "expected a list of [start generation, tasks] pairs"),
    ("[[0, 1.5]]", "expected a list of [start generation, tasks] pairs"),
    ("[[0, 3]]", "--schedule gives 3 tasks at generation 1, which this run trained with 2"),
])
def test_bad_resume_schedule_is_one_line_and_writes_nothing(tiny: Path, tmp_path: Path, capsys, text: str,
                                                           message: str) -> None:
    d = tmp_path / "run"
    assert main(["train", str(tiny), "--run-dir", str(d), "--generations", "2"]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    assert main(["resume", str(d), "--schedule", text]) == 2
    assert message in error_line(capsys)
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_run_dir_path_is_a_file(tiny: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", str(tiny), "--run-dir", str(f)]) == 2
    assert "exists and is not a directory" in error_line(capsys)
    d = tmp_path / "run"
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.yaml").mkdir()  # a directory where a file is expected
    assert main(["train", str(tiny), "--run-dir", str(d)]) == 2
    assert "config.yaml" in error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_run_dir_is_one_line(tiny: Path, tmp_path: Path, capsys) -> None:
    d = tmp_path / "run"
    assert main(["train", str(tiny), "--run-dir", str(d), "--generations", "2"]) == 0
    d.chmod(0o555)
    try:
        assert main(["resume", str(d), "--generations", "4"]) == 2
        assert "Permission denied" in error_line(capsys)
    finally:
        d.chmod(0o755)


# -- 6: --address auto without a cluster -----------------------------------------------------------

@pytest.mark.slow
def test_address_auto_without_cluster_writes_nothing(tiny: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import psutil  # a Ray dependency

    if any(p.info["name"] == "gcs_server" for p in psutil.process_iter(["name"])):
        pytest.skip("a Ray instance runs on this machine: --address auto would join it")
    d = tmp_path / "run"
    res = subprocess.run([*CLI, "train", str(tiny), "--run-dir", str(d), "--backend", "ray", "--address", "auto"],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, RAY_ADDRESS=""))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "no Ray cluster running on this machine (--address auto)" in res.stderr
    assert not d.exists()


# -- 7: stored things reused only when they are what they claim -----------------------------------

def _sweep_file(tmp_path: Path, tiny: Path, generations: int, extra: str = "", test: str = "") -> Path:
    sw = tmp_path / "sweep.yaml"
    sw.write_text(f"name: s\nbase: {tiny}\nset: {{generations: {generations}{extra}}}\ngrid: {{seed: [0]}}\n{test}")
    return sw


@pytest.mark.slow
def test_sweep_rerun_with_other_settings_is_refused_and_stale_tests_redone(tiny: Path, tmp_path: Path,
                                                                            capsys, caplog) -> None:
    out = tmp_path / "out"
    test = "test: {suites: [maze9], count: 4}\n"
    assert main(["sweep", str(_sweep_file(tmp_path, tiny, 2, test=test)), "--out", str(out)]) == 0
    stored = (out / "sweep.yaml").read_text()
    capsys.readouterr()
    assert main(["sweep", str(_sweep_file(tmp_path, tiny, 3, ", strategy.sigma0: 0.05", test)), "--out", str(out)]) == 2
    assert "strategy.sigma0 0.01 there, 0.05 now" in error_line(capsys)
    assert (out / "sweep.yaml").read_text() == stored  # nothing rewritten
    result = out / "seed-0" / "eval" / "maze9.json"
    assert json.loads(result.read_text())["tasks"] == 4
    assert main(["sweep", str(_sweep_file(tmp_path, tiny, 2, test="test: {suites: [maze9], count: 6}\n")),
                 "--out", str(out)]) == 0
    assert json.loads(result.read_text())["tasks"] == 6 and "differs in tasks" in caplog.text


# -- 8: task files ---------------------------------------------------------------------------------

def _walled(w, s, g):
    r, c = g[2]
    w[2, r - 1:r + 2, c - 1:c + 2] = 1
    w[2, r, c] = 0


def _same(w, s, g):
    g[1] = s[1]


@pytest.mark.parametrize("edit, needle", [
    (_walled, "task 2: the goal (3, 3) cannot be reached from the start"),
    (_same, "task 1: the start and the goal are the same cell"),
])
def test_unsolvable_task_files_name_the_task(edit, needle: str, tmp_path: Path, capsys) -> None:
    from evoplastic.envs import tasks

    ts = tasks.generate(4, 9, 0.3, 0)
    walls, start, goal = ts.walls.copy(), ts.start.copy(), ts.goal.copy()
    edit(walls, start, goal)
    f = tmp_path / "t.npz"
    meta = dict(ts.meta, format=tasks.FORMAT, format_version=tasks.FORMAT_VERSION)
    np.savez(f, walls=walls, start=start, goal=goal, meta=np.array(json.dumps(meta)))
    assert main(["baseline", "oracle", "--tasks", str(f)]) == 2
    assert needle in error_line(capsys)
    with pytest.raises(UserError, match="not written: " + needle.split(" (")[0].replace("(", r"\(")):
        tasks.save(tasks.TaskSet(walls, start, goal, ts.meta), tmp_path / "u.npz")
    assert not (tmp_path / "u.npz").exists()


# -- 9, 10: metrics and config.yaml on resume ------------------------------------------------------

def test_torn_metrics_line_is_dropped_on_resume(tiny: Path, reference: Path, tmp_path: Path) -> None:
    d = tmp_path / "run"
    assert main(["train", str(tiny), "--run-dir", str(d), "--generations", "2"]) == 0
    with open(d / "metrics.jsonl", "a") as f:
        f.write('{"generation": 3, "tasks": 2, "best_fi')
    with open(d / "metrics.csv", "a") as f:
        f.write("1")  # a torn row whose first field reads as an old generation
    assert main(["resume", str(d), "--generations", "6"]) == 0
    assert_same_run(reference, d)
    assert [ln.split(",")[0] for ln in (d / "metrics.csv").read_text().splitlines()[1:]] == list("0123456")


def test_edited_config_is_named_and_generations_written(tiny: Path, tmp_path: Path, caplog) -> None:
    d = tmp_path / "run"
    assert main(["train", str(tiny), "--run-dir", str(d), "--generations", "2"]) == 0
    from evoplastic import config as cfglib

    assert cfglib.load(d / "config.yaml").generations == 6  # train --generations runs 2 of the config's 6
    text = (d / "config.yaml").read_text()
    (d / "config.yaml").write_text(text.replace("sigma0: 0.01", "sigma0: 0.5").replace("\nseed: 0", "\nseed: 3"))
    assert main(["resume", str(d), "--generations", "3"]) == 0
    assert "was edited since the checkpoint (seed, strategy.sigma0)" in caplog.text
    cfg = cfglib.load(d / "config.yaml")
    assert cfg.generations == 3 and cfg.strategy.sigma0 == 0.01 and cfg.seed == 0


# -- 11, 12 ---------------------------------------------------------------------------------------

def test_a_bug_keeps_its_traceback(monkeypatch, capsys) -> None:
    from evoplastic import cli

    def broken(args):
        return [][1]  # a programming error, not a user error

    monkeypatch.setattr(cli, "_cmd_tasks_list", broken)
    assert main(["tasks", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "IndexError" in err and "this is a bug in evoplastic" in err


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    from evoplastic.atomic import write_atomic

    old = os.umask(mask)
    try:
        p = write_atomic(tmp_path / "r.json", lambda f: f.write(b"{}"))
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode
