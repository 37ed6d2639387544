"""Backends: in-process == direct evaluation == Ray, and Ray faults lose nothing."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from evoplastic import lifetime, localray, runner
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def work():
    spec = runner.EvalSpec("decprnn-postdn", 64)
    model = get_model("decprnn-postdn", 64)
    genomes = (0.05 * np.random.default_rng(0).standard_normal((24, model.n_gene))).astype(np.float32)
    ts = tasklib.generate(4, 9, 0.30, seed=3)
    direct = lifetime.evaluate(model, genomes, ts, repeats=3, seed=11)
    return spec, genomes, ts, direct


def same(a: lifetime.LifetimeResult, b: lifetime.LifetimeResult) -> None:
    for f in ("fitness", "returns", "reached", "steps"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.agent_steps == b.agent_steps


@pytest.mark.parametrize("n, t, pieces", [(24, 4, 1), (24, 4, 5), (24, 4, 48), (1, 1024, 8), (3, 2, 16)])
def test_units_cover_every_lifetime_once(n: int, t: int, pieces: int) -> None:
    units = runner.make_units(n, t, pieces)
    cover = np.zeros((n, t), int)
    for u in units:
        cover[u.g0:u.g1, u.t0:u.t1] += 1
    assert (cover == 1).all()
    assert len(units) <= max(pieces, 1) and (pieces < 2 or len(units) >= min(pieces, n * t) // 2)


@pytest.mark.parametrize("chunks", [1, 5, 30])
def test_inprocess_equals_direct_evaluation(work, chunks: int) -> None:
    spec, genomes, ts, direct = work
    same(runner.InProcessBackend(spec, chunks).evaluate(genomes, ts, 3, 11), direct)


@pytest.fixture(scope="module")
def ray_backend(work):
    spec = work[0]
    ray.init(**{**localray.init_kwargs(None), "num_cpus": 2}, include_dashboard=False, log_to_driver=False)
    backend = runner.RayBackend(spec, workers=2, chunks_per_worker=3, timeout=4.0, max_restarts=4)
    yield backend
    backend.close()
    ray.shutdown()


def test_ray_equals_inprocess(work, ray_backend) -> None:
    spec, genomes, ts, direct = work
    same(ray_backend.evaluate(genomes, ts, 3, 11), direct)
    # One genome on many tasks: the tasks are split across workers instead.
    one = ray_backend.evaluate(genomes[5:6], ts, 3, 11)
    same(one, lifetime.evaluate(get_model("decprnn-postdn"), genomes[5:6], ts, repeats=3, seed=11))


def _pids(backend) -> list[int]:
    return ray.get([a.pid.remote() for a in backend.actors])


def at_first_wait(monkeypatch, action) -> None:
    """Run ``action`` once, when the backend first waits for results: every actor is then busy
    with its first chunk, so the fault lands mid-generation however fast the chunks are."""
    real_wait, done = ray.wait, []

    def wait(*args, **kw):
        if not done:
            done.append(True)
            action()
        return real_wait(*args, **kw)

    monkeypatch.setattr(ray, "wait", wait)


def test_workers_run_at_the_drivers_priority(ray_backend) -> None:
    """Not Ray's default nice 15, which starves the workers beside any normal-priority job."""
    pids = ray.get([a.pid.remote() for a in ray_backend.actors])
    assert [os.getpriority(os.PRIO_PROCESS, p) for p in pids] == [os.getpriority(os.PRIO_PROCESS, 0)] * len(pids)


@pytest.mark.slow
def test_killed_actor_loses_no_genome(work, ray_backend, monkeypatch) -> None:
    spec, genomes, ts, direct = work
    victim = _pids(ray_backend)[0]
    before = len(ray_backend.events)
    big = np.concatenate([genomes] * 4)  # long enough to kill a worker mid-generation
    ref = lifetime.evaluate(get_model("decprnn-postdn"), big, ts, repeats=3, seed=11)
    at_first_wait(monkeypatch, lambda: os.kill(victim, signal.SIGKILL))
    res = ray_backend.evaluate(big, ts, 3, 11)
    same(res, ref)
    events = ray_backend.events[before:]
    assert any("worker died" in e for e in events), events
    assert victim not in _pids(ray_backend) and len(ray_backend.actors) == 2  # replaced


@pytest.mark.slow
def test_hung_actor_is_killed_and_its_chunk_resubmitted(work, ray_backend, monkeypatch) -> None:
    spec, genomes, ts, direct = work
    victim = _pids(ray_backend)[0]
    before = len(ray_backend.events)
    big = np.concatenate([genomes] * 2)
    ref = lifetime.evaluate(get_model("decprnn-postdn"), big, ts, repeats=3, seed=11)
    at_first_wait(monkeypatch, lambda: os.kill(victim, signal.SIGSTOP))  # alive but never answers
    try:
        res = ray_backend.evaluate(big, ts, 3, 11)
    finally:
        try:
            os.kill(victim, signal.SIGCONT)
        except ProcessLookupError:
            pass
    same(res, ref)
    assert any("hung" in e for e in ray_backend.events[before:]), ray_backend.events[before:]
    assert victim not in _pids(ray_backend)


@pytest.mark.slow
def test_replacement_start_up_is_not_counted_as_hung(work, ray_backend, monkeypatch, tmp_path) -> None:
    """A replacement worker that compiles its kernels from scratch (an empty numba cache: about
    12 s, three times the 4 s unit timeout) gets work once it has started, instead of being
    killed as hung again and again for its start-up."""
    spec, genomes, ts, direct = work
    victim = _pids(ray_backend)[0]
    before = len(ray_backend.events)
    big = np.concatenate([genomes] * 8)
    ref = lifetime.evaluate(get_model("decprnn-postdn"), big, ts, repeats=3, seed=11)
    monkeypatch.setattr(runner, "THREAD_VARS", {**runner.THREAD_VARS, "NUMBA_CACHE_DIR": str(tmp_path)})
    at_first_wait(monkeypatch, lambda: os.kill(victim, signal.SIGKILL))
    t0 = time.monotonic()
    same(ray_backend.evaluate(big, ts, 3, 11), ref)
    events = ray_backend.events[before:]
    assert any("worker died" in e for e in events) and not any("hung" in e or "did not start" in e
                                                                 for e in events), events
    assert len(ray_backend.actors) == 2 and len(set(_pids(ray_backend))) == 2
    if time.monotonic() - t0 < 4.0:  # the generation ended before the replacement could have started
        pytest.skip("the generation was shorter than the timeout: nothing to test")


@pytest.mark.slow
def test_no_worker_left_is_a_clear_error(work) -> None:
    spec, genomes, ts, direct = work
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        backend = runner.RayBackend(spec, workers=1, max_restarts=0)
        pid = _pids(backend)[0]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        with pytest.raises(runner.NoWorkersError, match="every Ray worker actor died"):
            backend.evaluate(genomes, ts, 3, 11)
    finally:
        ray.shutdown()
