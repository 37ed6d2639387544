"""The paper's published files: fetched once into a per-user cache, then used by short names.

Wang et al. (2022) published the trained DecPRNN(PostDN) genome and their pre-sampled task sets in
their code repository, github.com/WorldEditors/EvolvingPlasticANN (Apache-2.0). ``evoplastic
reference fetch`` downloads them from pinned commits, checks each file's SHA-256, and stores it as
``<cache>/<short name>.dat``. From then on the short name (``paper-genome``, ``paper-maze9``,
``paper-maze15``) is accepted wherever a task file or a genome is: ``eval``, ``baseline``,
``tasks show``, ``import-reference``, ``play`` and a config's ``validation.suite``.

The cache is ``$EVOPLASTIC_REFERENCE_DIR`` if set, else ``$XDG_CACHE_HOME/evoplastic/reference``
(``~/.cache/evoplastic/reference`` when ``XDG_CACHE_HOME`` is unset), following the XDG base
directory specification.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = "WorldEditors/EvolvingPlasticANN"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
ENV_DIR = "EVOPLASTIC_REFERENCE_DIR"


class FetchError(RuntimeError):
    """A file could not be downloaded, or its bytes do not have the pinned SHA-256."""


@dataclass(frozen=True)
class PublishedFile:
    """One file of the paper's repository, pinned by commit and checksum.

    Attributes:
        name: short name, also the cached file's stem (``<name>.dat``).
        commit: 40-hex commit of :data:`REPO` the file is taken from.
        path: the file's path inside that commit.
        sha256: hex digest the downloaded bytes must have.
        kind: ``"genome"`` (a reference checkpoint, 8 pickles) or ``"tasks"`` (a pickled task list).
        about: one line for listings.
        model: for a genome, the evoplastic model id it was trained as (hidden 64).
    """

    name: str
    commit: str
    path: str
    sha256: str
    kind: str
    about: str
    model: str | None = None

    @property
    def url(self) -> str:
        return RAW_URL.format(repo=REPO, commit=self.commit, path=self.path)

    @property
    def filename(self) -> str:
        return f"{self.name}.dat"


_TASKS_COMMIT = "7a92b39b814f23aeb8b976539734646d61cb39ae"
FILES: dict[str, PublishedFile] = {f.name: f for f in (
    PublishedFile("paper-genome", "4a6a74911f257275b1eed86f45d89b744ab8a0b5",
                  "demo/models/maze_decprnn_postdn_demo.dat",
                  "0db0c6583aed2b14d09c96e3aebb1f425121d6ff5a60da600d544c7ff443b023", "genome",
                  "the paper's trained DecPRNN(PostDN) checkpoint (hidden 64, 1,347 genes, generation 49,000); "
                  "evaluate with --profile reference-2022-08", model="decprnn-postdn"),
    PublishedFile("paper-maze9", _TASKS_COMMIT, "demo/tasks/2048_maze9.dat",
                  "a84306ba852b254ce4f066e80d9ae578d7181139b0bdcda1afb35c8fffbc019a", "tasks",
                  "the paper's 2,048 pre-sampled 9x9 tasks (crowd ratio 0.30)"),
    PublishedFile("paper-maze15", _TASKS_COMMIT, "demo/tasks/1024_maze15.dat",
                  "9f78c824e38bd147a9b68f2af7d3e1720a3a3d047070ff80422ebaaa65352934", "tasks",
                  "the paper's 1,024 pre-sampled 15x15 tasks (crowd ratio 0.30)"),
)}


def cache_dir() -> Path:
    """Where fetched files live: ``$EVOPLASTIC_REFERENCE_DIR``, else the XDG cache (see module doc)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "evoplastic" / "reference"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lookup(text: str | Path, kind: str | None = None) -> Path | None:
    """The cached path of a short name, or None if ``text`` is not a short name (of ``kind``).

    Raises:
        FileNotFoundError: ``text`` is a short name, but the file has not been fetched.
    """
    f = FILES.get(str(text))
    if f is None or (kind is not None and f.kind != kind):
        return None
    path = cache_dir() / f.filename
    if not path.is_file():
        raise FileNotFoundError(f"{f.name} is not installed in {cache_dir()}; run `evoplastic reference fetch` "
                                "(downloads the paper's files, about 9 MB)")
    return path


def status(dest: Path | None = None) -> list[tuple[PublishedFile, Path, bool]]:
    """Each published file, its place in ``dest`` (default: the cache) and whether it is there."""
    dest = dest or cache_dir()
    return [(f, dest / f.filename, (dest / f.filename).is_file()) for f in FILES.values()]


def _local_copies(src: Path) -> dict[str, Path]:
    """Files directly in ``src`` by SHA-256 (copies may have any name)."""
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such directory to install the paper's files from")
    return {sha256_file(p): p for p in sorted(src.iterdir()) if p.is_file()}


def _download(url: str, timeout: float) -> Iterator[bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
            yield from iter(lambda: resp.read(1 << 20), b"")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"could not download {url}: {reason}; with no network, install from a local copy: "
                         "evoplastic reference fetch --from DIR") from None


def _install(f: PublishedFile, blocks: Iterator[bytes], dest: Path, origin: str) -> Path:
    """Write ``blocks`` to ``dest/<name>.dat`` atomically if their SHA-256 is the pinned one."""
    dest.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{f.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for block in blocks:
                h.update(block)
                out.write(block)
        if h.hexdigest() != f.sha256:
            raise FetchError(f"{f.name}: checksum mismatch for {origin}: sha256 {h.hexdigest()[:16]}..., "
                             f"expected {f.sha256[:16]}...; nothing installed")
        os.replace(tmp, dest / f.filename)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest / f.filename


def fetch(dest: Path | None = None, source: Path | None = None, timeout: float = 60.0,
          report: Callable[[str], None] = print) -> list[Path]:
    """Install every published file into ``dest`` (default: :func:`cache_dir`).

    A file already in ``dest`` with the pinned checksum is kept. With ``source`` (a local
    directory), files are taken from there, matched by checksum whatever their names; otherwise they
    are downloaded from their pinned URLs. ``report`` gets one line per file.

    Returns:
        The installed paths, in :data:`FILES` order.

    Raises:
        FetchError: a download failed, a checksum did not match, or ``source`` lacks a file.
        FileNotFoundError: ``source`` is not a directory.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    local = _local_copies(Path(source)) if source is not None else None
    out = []
    for f in FILES.values():
        target = dest / f.filename
        if target.is_file() and sha256_file(target) == f.sha256:
            report(f"{f.name}: already in {target}")
        elif local is not None:
            if f.sha256 not in local:
                raise FetchError(f"{f.name}: no file in {source} has sha256 {f.sha256[:16]}... "
                                 f"({f.path} of {REPO} at {f.commit[:7]})")
            with open(local[f.sha256], "rb") as src:
                _install(f, iter(lambda: src.read(1 << 20), b""), dest, str(local[f.sha256]))
            report(f"{f.name}: installed {target} from {local[f.sha256]}")
        else:
            _install(f, _download(f.url, timeout), dest, f.url)
            report(f"{f.name}: downloaded {target} ({target.stat().st_size / 1e6:.1f} MB, sha256 verified)")
        out.append(target)
    return out
