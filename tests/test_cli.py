"""The evoplastic command line: tasks make/show/list and baselines, with one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evoplastic.cli import main


def test_tasks_make_show_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "t.npz"
    assert main(["tasks", "make", "--size", "11", "--crowd", "0.3", "--count", "10", "--seed", "4",
                 "--out", str(out)]) == 0
    assert out.exists()
    capsys.readouterr()
    assert main(["tasks", "show", str(out), "--render", "2", "--json"]) == 0
    text = capsys.readouterr().out
    summary = json.loads(text[: text.index("\ntask 2")])
    assert summary["tasks"] == 10 and summary["size"] == 11 and summary["seed"] == 4
    assert "S" in text and "G" in text


def test_baseline_json_schema(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["baseline", "oracle", "--tasks", "maze9", "--count", "32", "--rollouts", "4",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for key in ("tasks", "rollouts", "rollout_mean", "rollout_se", "goal_rate", "steps_mean",
                "weighted_mean", "weighted_se", "suite", "seed", "versions"):
        assert key in res
    assert res["tasks"] == 32 and res["rollouts"] == 4 and len(res["rollout_mean"]) == 4
    assert res["goal_rate"] == [1.0] * 4


def test_baseline_several_suites_to_stdout(capsys: pytest.CaptureFixture) -> None:
    assert main(["baseline", "random", "--tasks", "maze9,maze15", "--count", "8", "--json", "-"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["suite"] for r in res] == ["maze9", "maze15"]


@pytest.mark.parametrize("argv,needle", [
    (["baseline", "oracle", "--tasks", "maze99"], "no task suite or file 'maze99'"),
    (["baseline", "oracle", "--tasks", "maze9", "--rollouts", "3", "--weights", "1,2"], "need 3 rollout weights"),
    (["tasks", "make", "--size", "8", "--crowd", "0.3", "--count", "2", "--seed", "0", "--out", "x.npz"],
     "odd integer"),
])
def test_errors_are_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture,
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("evoplastic: error:")


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "evoplastic"
    out = subprocess.run([str(exe), "tasks", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "maze21-val" in out.stdout
