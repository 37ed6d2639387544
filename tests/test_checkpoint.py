"""Checkpoint files: atomic, verified, the newest K kept, corrupt ones detected and skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evoplastic import checkpoint as ckpt
from evoplastic.checkpoint import CheckpointError


def arrays(g: int) -> dict[str, np.ndarray]:
    return {"es/mean": np.arange(5, dtype=np.float32) + g, "es/rng": np.array('{"state": 1}'),
            "best_genome": np.full(3, g, np.float32)}


def test_round_trip_and_keep(tmp_path: Path) -> None:
    for g in (2, 4, 6, 8):
        ckpt.save(tmp_path, g, arrays(g), {"note": g}, keep=2)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert names == ["ckpt-0000006.npz", "ckpt-0000008.npz"]
    got, meta, path = ckpt.load_latest(tmp_path)
    assert path.name == "ckpt-0000008.npz" and meta["generation"] == 8 and meta["note"] == 8
    for k, v in arrays(8).items():
        assert np.array_equal(got[k], v) and got[k].dtype == v.dtype
    assert not list(ckpt.ckpt_dir(tmp_path).glob("*.tmp"))


def test_truncated_checkpoint_falls_back_to_the_previous(tmp_path: Path, caplog) -> None:
    ckpt.save(tmp_path, 2, arrays(2), {})
    p = ckpt.save(tmp_path, 4, arrays(4), {})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"ckpt-0000004\.npz: unreadable, truncated or corrupt checkpoint"):
        ckpt.load(p)
    got, meta, path = ckpt.load_latest(tmp_path)
    assert meta["generation"] == 2 and np.array_equal(got["es/mean"], arrays(2)["es/mean"])
    assert "falling back to the previous checkpoint" in caplog.text


def test_flipped_byte_is_detected(tmp_path: Path) -> None:
    p = ckpt.save(tmp_path, 2, {"x": np.zeros(4096, np.float32)}, {})
    data = bytearray(p.read_bytes())
    at = data.index(b"\x00" * 64)  # inside the stored (uncompressed) array
    data[at + 10] = 1
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load(p)


def test_no_good_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        ckpt.load_latest(tmp_path)
    p = ckpt.save(tmp_path, 1, arrays(1), {})
    p.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="no good checkpoint"):
        ckpt.load_latest(tmp_path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    p = ckpt.save(tmp_path, 1, arrays(1), {"format_version": 99})
    # meta keys passed in cannot override the format fields
    assert ckpt.load(p)[1]["format_version"] == ckpt.FORMAT_VERSION
    import json
    import zipfile
    with zipfile.ZipFile(p) as z:
        items = {n: z.read(n) for n in z.namelist()}
    meta_npy = np.array(json.dumps({"format": ckpt.FORMAT, "format_version": 99}))
    import io
    buf = io.BytesIO()
    np.save(buf, meta_npy)
    items["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(p, "w") as z:
        for n, b in items.items():
            z.writestr(n, b)
    with pytest.raises(CheckpointError, match="format version 99"):
        ckpt.load(p)
