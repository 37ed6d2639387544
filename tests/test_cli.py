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


def test_models_lists_spec_counts(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--json", "-"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["decprnn-postdn"]["n_gene"] == 1347 and rows["decprnn"]["n_mem"] == 5120
    assert rows["meta-lstm"]["n_gene"] == 20805
    assert main(["models", "--hidden", "32", "--json", "-"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["meta-rnn"]["n_gene"] == 1701


def test_eval_genome_file_on_two_suites(tmp_path: Path) -> None:
    import numpy as np

    from evoplastic import genome as genome_io
    from evoplastic.models import get_model

    model = get_model("decprnn-postdn", 16)
    g = (0.1 * np.random.default_rng(0).standard_normal(model.n_gene)).astype(np.float32)
    path = genome_io.save(tmp_path / "g.npz", g, model.id, 16)
    out = tmp_path / "r.json"
    assert main(["eval", str(path), "--tasks", "maze9,maze15", "--count", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["suite"] for r in res] == ["maze9", "maze15"]
    assert res[0]["model"] == "decprnn-postdn" and res[0]["rollouts"] == 3 and res[0]["tasks"] == 4
    assert "fitness" in res[0] and len(res[0]["goal_rate"]) == 3


@pytest.mark.parametrize("payload,needle", [(b"not a zip", "unreadable, truncated or corrupt genome file"),
                                            (None, "no such genome file")])
def test_eval_bad_genome_file_is_one_line(tmp_path: Path, payload, needle, capsys) -> None:
    path = tmp_path / "g.npz"
    if payload is not None:
        path.write_bytes(payload)
    assert main(["eval", str(path), "--tasks", "maze9"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
