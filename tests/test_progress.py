"""Progress lines, `evoplastic status` and TensorBoard logging, on a real (tiny, in-process) run."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evoplastic import status
from evoplastic.cli import main
from evoplastic.progress import Progress, format_duration

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "strategy.popsize=8", "--set", "tasks.repeats=2", "--set", "validation.count=8",
        "--set", "validation.interval=2", "--set", "model.hidden=16", "--backend", "inprocess"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def row(g: int, seconds: float = 2.0, validation: float | None = None) -> dict:
    r = {"generation": g, "seconds": seconds, "best_fitness": 0.5, "mean_fitness": -1.25}
    return r if validation is None else {**r, "validation": validation}


@pytest.mark.parametrize("seconds,text", [(7.24, "7.2s"), (95, "1m35s"), (3725, "1h02m"), (3 * 86400 + 7200, "3d02h"),
                                          (float("nan"), "?")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_periodic_lines_without_a_terminal() -> None:
    out = io.StringIO()
    p = Progress(total=10, start=0, label="sigma0=0.01", stream=out, interval=3600)
    for g in range(1, 11):
        p.update(row(g, validation=-0.5 if g == 4 else None), best_validation=-0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first generation, then the last (the interval never elapsed)
    assert all(line.startswith("[sigma0=0.01] gen ") for line in lines)
    assert "gen 10/10" in lines[1] and "2.00 s/gen" in lines[1] and "ETA 0.0s" in lines[1]
    assert "fitness best +0.500 mean -1.250" in lines[1] and "validation -0.500 (best -0.500)" in lines[1]
    first = lines[0]
    assert "gen 1/10" in first and "ETA 18.0s" in first and "validation - (best -0.500)" in first


def test_live_line_on_a_terminal() -> None:
    out = Tty()
    p = Progress(total=3, stream=out)
    for g in (1, 2):
        p.update(row(g), best_validation=float("-inf"))
    p.say("checkpoint")
    text = out.getvalue()
    assert text.count("\r\033[K") == 2 and "\ncheckpoint\n" in text and "(best -)" in text


def test_train_shows_progress_then_status_and_tensorboard(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "experiments/smoke.yaml"), "--run-dir", str(run), "--generations", "3",
                 "--tensorboard", *TINY]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "starting" in err[0] or "evaluating in this process" in err[0]
    gens = [line for line in err if line.startswith("gen ")]
    assert gens[0].startswith("gen 1/3") and gens[-1].startswith("gen 3/3") and "s/gen" in gens[-1]

    rows = status.run_dirs(run)
    info = status.run_status(rows[0])
    assert (info["generation"], info["total"], info["state"]) == (3, 3, "finished")  # train --generations 3
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    best = max((m["validation"], m["generation"]) for m in metrics if "validation" in m)
    assert (info["best_validation"], info["best_generation"]) == best
    assert status.last_validation(run) == [m["validation"] for m in metrics if "validation" in m][-1]

    target = json.loads((run / status.TARGET).read_text())
    assert target["target"] == 3 and target["pid"] == os.getpid()
    (run / status.TARGET).write_text(json.dumps({**target, "target": 10}))  # as if still going to 10
    info = status.run_status(run)
    assert (info["total"], info["state"]) == (10, "running")  # this process is alive
    assert info["eta_s"] == pytest.approx(7 * info["s_per_gen"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    (run / status.TARGET).write_text(json.dumps({**target, "target": 10, "pid": int(dead.stdout)}))
    assert status.run_status(run)["state"] == "stopped"
    (run / status.TARGET).write_text(json.dumps({**target, "target": 10, "host": "elsewhere"}))
    assert status.run_status(run)["state"] == "running"  # another host: fresh metrics count as running
    old = time.time() - 3600
    os.utime(run / "metrics.jsonl", (old, old))
    assert status.run_status(run)["state"] == "stopped"
    assert main(["status", str(tmp_path)]) == 0  # tmp_path as a sweep directory holding one run
    out = capsys.readouterr().out
    assert "run" in out and "stopped" in out and "3/10" in out

    pytest.importorskip("tensorboardX")
    from tensorboardX.proto import event_pb2

    (events,) = (run / "tensorboard").iterdir()
    data, tags, at = events.read_bytes(), set(), 0
    while at < len(data):  # TFRecord framing: length (u64), crc (u32), payload, crc (u32)
        (n,) = struct.unpack("<Q", data[at:at + 8])
        ev = event_pb2.Event.FromString(data[at + 12:at + 12 + n])
        tags |= {(v.tag, ev.step) for v in ev.summary.value}
        at += 16 + n
    assert {("evoplastic/best_fitness", 1), ("evoplastic/mean_fitness", 3), ("evoplastic/validation", 2)} <= tags


def test_status_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        status.run_dirs(tmp_path / "nope")
    with pytest.raises(ValueError, match="neither a run directory"):
        status.run_dirs(tmp_path)
