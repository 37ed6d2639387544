"""A whole node removed from a two-node Ray cluster mid-generation loses no genome."""

from __future__ import annotations


import numpy as np
import pytest

from evoplastic import lifetime, runner
from evoplastic.envs import tasks as tasklib
from evoplastic.models import get_model

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")


@pytest.mark.slow
def test_node_removed_mid_generation_loses_nothing(monkeypatch) -> None:
    if ray.is_initialized():
        ray.shutdown()
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        spec = runner.EvalSpec("decprnn-postdn", 64)
        backend = runner.RayBackend(spec, workers=2, chunks_per_worker=4, timeout=30.0)
        nodes = ray.get([a.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
                         for a in backend.actors])
        assert len(set(nodes)) == 2, "the two workers should sit on the two nodes"
        model = get_model("decprnn-postdn")
        genomes = (0.05 * np.random.default_rng(2).standard_normal((64, model.n_gene))).astype(np.float32)
        ts = tasklib.generate(4, 9, 0.30, seed=5)
        ref = lifetime.evaluate(model, genomes, ts, repeats=3, seed=13)
        # Remove the node when the backend first waits: both workers are then mid-chunk.
        real_wait, done = ray.wait, []

        def wait(*args, **kw):
            if not done:
                done.append(True)
                cluster.remove_node(node)
            return real_wait(*args, **kw)

        monkeypatch.setattr(ray, "wait", wait)
        res = backend.evaluate(genomes, ts, 3, 13)
        for f in ("fitness", "returns", "reached", "steps"):
            np.testing.assert_array_equal(getattr(res, f), getattr(ref, f))
        assert any("worker died" in e for e in backend.events), backend.events
        assert len(backend.actors) == 1  # no CPU left for a replacement: going on with one
    finally:
        ray.shutdown()
        cluster.shutdown()
