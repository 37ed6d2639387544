"""`evoplastic reference fetch`: pinned checksums, local installs, short names; never the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoplastic import reference_files as rf
from evoplastic.cli import main
from evoplastic.envs import tasks

from _paperfiles import SHARED


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(rf.ENV_DIR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _need_shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} absent: no local copy of the paper's files")
    return SHARED


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(rf.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rf.cache_dir() == tmp_path / "evoplastic" / "reference"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rf.cache_dir() == tmp_path / "home" / ".cache" / "evoplastic" / "reference"
    monkeypatch.setenv(rf.ENV_DIR, str(tmp_path / "mine"))
    assert rf.cache_dir() == tmp_path / "mine"


def test_pinned_urls() -> None:
    assert rf.FILES["paper-genome"].url == (
        "https://raw.githubusercontent.com/WorldEditors/EvolvingPlasticANN/"
        "4a6a74911f257275b1eed86f45d89b744ab8a0b5/demo/models/maze_decprnn_postdn_demo.dat")
    assert rf.FILES["paper-maze15"].url.endswith("7a92b39b814f23aeb8b976539734646d61cb39ae/demo/tasks/1024_maze15.dat")


def test_short_names_before_fetch_say_how(cache: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(FileNotFoundError, match="evoplastic reference fetch"):
        tasks.load("paper-maze9")
    assert main(["eval", "paper-genome", "--tasks", "maze9", "--count", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "reference fetch" in err


def test_fetch_from_local_copy_by_checksum(cache: Path, capsys: pytest.CaptureFixture) -> None:
    src = _need_shared()
    assert main(["reference", "fetch", "--from", str(src)]) == 0
    for f in rf.FILES.values():
        assert rf.sha256_file(cache / f.filename) == f.sha256
    assert "installed" in capsys.readouterr().out
    assert main(["reference", "fetch", "--from", str(src)]) == 0  # idempotent
    assert capsys.readouterr().out.count("already in") == 3
    ts = tasks.load("paper-maze15")
    assert (len(ts), ts.size, ts.name) == (1024, 15, "paper-maze15")
    assert main(["eval", "paper-genome", "--profile", "reference-2022-08", "--tasks", "paper-maze9",
                 "--count", "8", "--json", "-"]) == 0
    assert '"genome": "paper-genome"' in capsys.readouterr().out
    out = cache.parent / "g.npz"
    assert main(["import-reference", "paper-genome", "--out", str(out)]) == 0 and out.is_file()


def test_checksum_mismatch_installs_nothing(cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "mirror" / rf.FILES["paper-genome"].path
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the genome")
    monkeypatch.setattr(rf, "RAW_URL", f"file://{tmp_path / 'mirror'}/{{path}}")
    assert main(["reference", "fetch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "checksum mismatch" in err and "nothing installed" in err
    assert not cache.exists() or not any(cache.iterdir())


def test_download_failure_is_one_line(cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rf, "RAW_URL", f"file://{tmp_path / 'nowhere'}/{{path}}")
    assert main(["reference", "fetch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("evoplastic: error: could not download file://")


def test_download_path_verifies_and_installs(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _need_shared()
    mirror = cache.parent / "mirror"
    by_sum = {rf.sha256_file(p): p for p in src.iterdir()}
    for f in rf.FILES.values():  # lay the local copies out as the repository does
        (mirror / f.path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / f.path).symlink_to(by_sum[f.sha256])
    monkeypatch.setattr(rf, "RAW_URL", f"file://{mirror}/{{path}}")
    lines: list[str] = []
    paths = rf.fetch(report=lines.append)
    assert [p.name for p in paths] == ["paper-genome.dat", "paper-maze9.dat", "paper-maze15.dat"]
    assert all("sha256 verified" in line for line in lines)
