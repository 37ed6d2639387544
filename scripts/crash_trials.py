#!/usr/bin/env python
"""Fault trials: stop training at random moments, resume, compare with an uninterrupted
run; then feed bad inputs and count one-line errors.

Run: nice -n 10 .venv/bin/python scripts/crash_trials.py [--kills 20] [--signals 4] [--seed 0]

Crash-resume: the issue's tiny config is trained once without interruption (the reference). Each
trial starts the same training and stops it: ``kill -9`` at a random moment of the reference's
wall time, ``kill -9`` as soon as config.yaml exists (before the first checkpoint), ``kill -9``
while a checkpoint's temp file exists (mid-write), or SIGTERM / SIGINT at a random moment. Then
``evoplastic resume`` runs to the end, and the trial counts as bit-identical when the final
checkpoint's arrays and metadata (config, counters) and every metrics row (minus wall-time columns)
equal the reference's. Bad inputs: each kind is one command that must exit 2 with a single-line
error, within 120 s, with no traceback and nothing written to the run directory it names.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

TINY = (Path(__file__).resolve().parents[1] / "experiments" / "tiny.yaml").read_text()  # 6 generations in a few seconds
CLI = [sys.executable, "-m", "evoplastic.cli"]


def final_state(run_dir: Path) -> tuple[dict, dict, list]:
    from evoplastic import checkpoint as ckpt

    arrays, meta, _ = ckpt.load_latest(run_dir)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [{k: v for k, v in r.items() if k not in ("seconds", "agent_steps_per_s")} for r in rows]
    return arrays, meta, rows


def same(a: Path, b: Path) -> bool:
    (xa, ma, ra), (xb, mb, rb) = final_state(a), final_state(b)
    return (sorted(xa) == sorted(xb) and all(np.array_equal(xa[k], xb[k]) for k in xa)
            and ma == mb and ra == rb)


def trial(tiny: Path, run_dir: Path, how: str, ref_seconds: float, rng: random.Random) -> tuple[str, bool, str]:
    """One stop-and-resume trial; (what happened, identical to the reference, stop message)."""
    proc = subprocess.Popen([*CLI, "train", str(tiny), "--run-dir", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    sig = signal.SIGKILL if how.startswith("kill") else getattr(signal, how)
    seen_tmp = False
    if how == "kill-before-first-checkpoint":
        while not (run_dir / "config.yaml").exists() and proc.poll() is None:
            time.sleep(0.002)
    elif how == "kill-during-checkpoint-write":
        target = rng.choice([0, 2, 4])
        while proc.poll() is None and not seen_tmp:
            seen_tmp = bool(list((run_dir / "checkpoints").glob(f"ckpt-{target:07d}.npz.*.tmp")))
    else:
        time.sleep(rng.uniform(0.0, ref_seconds))
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.npz")) if run_dir.exists() else []
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    at = f"{time.monotonic() - t0:.2f} s, checkpoints then: {ckpts[-1] if ckpts else 'none'}, exit {proc.returncode}"
    if how == "kill-during-checkpoint-write":
        at += f", temp file of ckpt-{target:07d} {'present' if seen_tmp else 'not seen'} at the kill"
    if (run_dir / "config.yaml").exists():
        res = subprocess.run([*CLI, "resume", str(run_dir)], capture_output=True, text=True, timeout=600)
    else:  # stopped before the run existed (interpreter start-up): the same train command again
        at += "; nothing written yet, so `train` again"
        res = subprocess.run([*CLI, "train", str(tiny), "--run-dir", str(run_dir)], capture_output=True,
                             text=True, timeout=600)
    if res.returncode != 0:
        return f"{how} at {at}; resume failed: {res.stderr.strip()[-300:]}", False, err.strip()
    stops = [x for x in err.splitlines() if x.startswith("evoplastic: stopped")]
    return f"{how} at {at}", same(run_dir, run_dir.parent / "ref"), stops[-1] if stops else "(no stop message)"


def crash_trials(work: Path, kills: int, signals: int, seed: int) -> None:
    rng = random.Random(seed)
    tiny = work / "tiny.yaml"
    tiny.write_text(TINY)
    t0 = time.monotonic()
    subprocess.run([*CLI, "train", str(tiny), "--run-dir", str(work / "ref")], check=True,
                   capture_output=True, timeout=600)
    ref_seconds = time.monotonic() - t0
    print(f"reference run: {ref_seconds:.1f} s")
    hows = (["kill-before-first-checkpoint"] * 3 + ["kill-during-checkpoint-write"] * 3
            + ["kill-random"] * max(0, kills - 6) + ["SIGTERM", "SIGINT"] * (signals // 2))
    identical = 0
    for i, how in enumerate(hows):
        for attempt in range(6):  # a stop that came after the run had finished is no trial: again
            d = work / f"t{i:02d}-{attempt}"
            what, ok, msg = trial(tiny, d, how, ref_seconds * 0.9, rng)
            if "exit 0" not in what:
                break
        identical += ok
        print(f"[{i + 1:2d}/{len(hows)}] {'identical' if ok else 'DIFFERENT'}  {what}"
              + (f"\n          message: {msg}" if how.startswith("SIG") else ""), flush=True)
    n_kill = sum(h.startswith("kill") for h in hows)
    print(f"crash-resume: {identical}/{len(hows)} continued bit-identically ({n_kill} kill -9, "
          f"{len(hows) - n_kill} SIGTERM/SIGINT)")


def bad_inputs(work: Path) -> None:
    tiny = work / "tiny.yaml"
    tiny.write_text(TINY)
    files = work / "bad"
    files.mkdir(exist_ok=True)

    def cfg(name: str, text: str) -> str:
        (files / name).write_text(text)
        return str(files / name)

    def tweak(old: str, new: str) -> str:
        return TINY.replace(old, new)

    def npz_claiming(name: str) -> str:  # a 2^33-float genome claimed by its .npy header
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (8589934592,), }"
        npy = b"\x93NUMPY\x01\x00" + len(header.ljust(117) + "\n").to_bytes(2, "little") \
            + (header.ljust(117) + "\n").encode() + b"\0" * 64
        with zipfile.ZipFile(files / name, "w") as z:
            z.writestr("genome.npy", npy)
            z.writestr("meta.npy", npy)
        return str(files / name)

    def tasks_file(name: str, edit) -> str:
        from evoplastic.envs import tasks

        ts = tasks.generate(4, 9, 0.3, 0)
        walls, start, goal = ts.walls.copy(), ts.start.copy(), ts.goal.copy()
        edit(walls, start, goal)
        meta = dict(ts.meta, format=tasks.FORMAT, format_version=tasks.FORMAT_VERSION)
        np.savez(files / name, walls=walls, start=start, goal=goal, meta=np.array(json.dumps(meta)))
        return str(files / name)

    def wall_in(w, s, g):
        r, c = g[2]
        w[2, r - 1:r + 2, c - 1:c + 2] = 1
        w[2, r, c] = 0

    def same_cell(w, s, g):
        g[1] = s[1]

    run = str(work / "bad-run")
    train = ["train", "--run-dir", run]
    kinds = {
        "empty config file": [*train[:1], cfg("empty.yaml", ""), *train[1:]],
        "duplicate key (seed twice)": [*train[:1], cfg("dup.yaml", TINY + "seed: 5\n"), *train[1:]],
        "duplicate block (strategy twice)": [*train[:1], cfg("dup2.yaml", TINY + "strategy: {popsize: 8}\n"), *train[1:]],
        "negative seed": [*train[:1], cfg("neg.yaml", tweak("seed: 0", "seed: -1")), *train[1:]],
        "init_std .inf": [*train[:1], cfg("inf.yaml", tweak("init_std: 0.05", "init_std: .inf")), *train[1:]],
        "init_std 1.0e+39 (past float32)": [*train[:1], cfg("big.yaml", tweak("init_std: 0.05", "init_std: 1.0e+39")), *train[1:]],
        "tasks.size 5 (generator rule)": [*train[:1], cfg("s5.yaml", tweak("size: 9", "size: 5")), *train[1:]],
        "tasks.size 101 (generation time)": [*train[:1], cfg("s101.yaml", tweak("size: 9", "size: 101")), *train[1:]],
        "popsize 1000000000": [*train[:1], cfg("pop.yaml", tweak("popsize: 8", "popsize: 1000000000")), *train[1:]],
        "hidden 100000": [*train[:1], cfg("hid.yaml", tweak("hidden: 16", "hidden: 100000")), *train[1:]],
        "YAML alias bomb": [*train[:1], cfg("bomb.yaml", TINY + "x: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
            f"x{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(8))), *train[1:]],
        "--address auto, no cluster": [*train[:1], str(tiny), *train[1:], "--backend", "ray", "--address", "auto"],
        "sweep file with a duplicate key": ["sweep", cfg("sw.yaml", f"base: {tiny}\ngrid: {{seed: [0]}}\ngrid: {{seed: [1]}}\n"),
                                            "--out", run],
        "genome .npz claiming 2^33 floats": ["eval", npz_claiming("claim.npz"), "--tasks", "maze9", "--count", "2"],
        "task file: goal walled in": ["baseline", "oracle", "--tasks", tasks_file("walled.npz", wall_in)],
        "task file: start == goal": ["baseline", "oracle", "--tasks", tasks_file("same.npz", same_cell)],
        "tasks make --size 101": ["tasks", "make", "--size", "101", "--crowd", "0.3", "--count", "2", "--seed", "0",
                                  "--out", str(files / "t101.npz")],
        "resume of a directory that is not a run": ["resume", str(files)],
        "run directory is a file": [*train[:1], str(tiny), "--run-dir", str(tiny)],
        "reference .dat that is not a pickle": ["tasks", "show", cfg("x.dat", "not a pickle")],
    }
    one_line = 0
    for kind, args in kinds.items():
        shutil.rmtree(run, ignore_errors=True)
        env = dict(os.environ, RAY_ADDRESS="")
        t0 = time.monotonic()
        try:
            res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            print(f"  HANG      {kind}")
            continue
        errs = [x for x in res.stderr.splitlines() if x.startswith("evoplastic: error:")]
        ok = (res.returncode == 2 and len(errs) == 1 and "Traceback" not in res.stderr
              and not Path(run).exists())
        one_line += ok
        print(f"  {'one line' if ok else 'FAILED  '}  {kind} ({time.monotonic() - t0:.1f} s): "
              f"{errs[0] if errs else res.stderr.strip()[-200:]}")
    print(f"bad inputs: {one_line}/{len(kinds)} kinds gave a one-line error (exit 2, nothing written)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20, help="kill -9 trials (default 20)")
    p.add_argument("--signals", type=int, default=4, help="SIGTERM + SIGINT trials (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["crash", "inputs"], default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="evoplastic-trials-") as tmp:
        work = Path(tmp)
        if args.only != "inputs":
            crash_trials(work, args.kills, args.signals, args.seed)
        if args.only != "crash":
            bad_inputs(work)


if __name__ == "__main__":
    main()
