"""The wheel built from the repo installs into a fresh venv, imports, and does not collide with an
unrelated top-level ``envs`` package (PyPI has one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv_beside_a_foreign_envs_package(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("evoplastic", "envs"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(src)], check=True, cwd=tmp_path)
    (wheel,) = dist.glob("evoplastic-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "evoplastic/envs/maze.py" in names
    assert not any(n.startswith("envs/") for n in names), "the wheel must not ship a top-level envs"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, cwd=tmp_path)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # A stand-in for the unrelated PyPI package "envs", installed at the top level.
    (site / "envs").mkdir()
    (site / "envs" / "__init__.py").write_text("FOREIGN = True\n")
    # Dependencies (numpy, gymnasium, ...) come from the test environment, after the fresh venv's own.
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import envs, evoplastic, evoplastic.envs.maze, gymnasium\n"
        "assert envs.FOREIGN\n"
        f"assert evoplastic.__file__.startswith({str(site)!r}), evoplastic.__file__\n"
        "from evoplastic.envs import tasks\n"
        "t = tasks.generate(4, 9, 0.3, 1)\n"
        "assert len(t) == 4\n"
        "env = gymnasium.make('evoplastic/MetaMaze2D-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "assert obs.shape == (9,)\n"
        "import evoplastic.models, evoplastic.strategies, evoplastic.train, evoplastic.runner, evoplastic.cli\n"
        "import pkgutil\n"
        "sub = {m.name for m in pkgutil.walk_packages(evoplastic.__path__, 'evoplastic.')}\n"
        "assert {'evoplastic.models.dec', 'evoplastic.strategies.sepcma', 'evoplastic.envs.maze'} <= sub, sub\n"
        "print('ok')\n"
    )
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    cli = subprocess.run([str(env_dir / "bin" / "evoplastic"), "tasks", "list"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert cli.returncode == 0 and "maze15-crowded" in cli.stdout, cli.stderr
    cli = subprocess.run([str(env_dir / "bin" / "evoplastic"), "models"], capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 0 and "decprnn-postdn" in cli.stdout, cli.stderr
