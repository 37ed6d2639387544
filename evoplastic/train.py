"""The meta-training loop (method §4): ask, evaluate on the generation's tasks, tell; validate;
checkpoint; resume exactly.

Randomness: one root ``SeedSequence(config.seed)``. The strategy's generator (saved in every
checkpoint) samples genomes; everything else derives statelessly from (seed, purpose, generation):
the generation's training mazes and the lifetime seeds. So a run resumed from a checkpoint, with
any number of workers, replays exactly what the uninterrupted run would have done.

Run directory::

    config.yaml      the resolved config        command.txt   the command lines that ran here
    metrics.csv      one row per generation     metrics.jsonl the same rows as JSON
    events.log       faults, NaNs, checkpoints  checkpoints/  ckpt-NNNNNNN.npz (newest K)
    best.npz / mean.npz   genome files of the best-validated and the current mean genome
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shlex
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from evoplastic import checkpoint as ckpt
from evoplastic import config as cfglib
from evoplastic import genome as genome_io
from evoplastic import lifetime
from evoplastic import runner
from evoplastic.envs import tasks as tasklib
from evoplastic.atomic import write_atomic
from evoplastic.errors import NoWorkersError, Stop, UserError
from evoplastic.models import get_model
from evoplastic.models.masked import Masked
from evoplastic.progress import Progress, open_tensorboard
from evoplastic.status import last_validation, write_target
from evoplastic.strategies import make_strategy, restore_strategy

log = logging.getLogger("evoplastic.train")

METRICS = ["generation", "tasks", "best_fitness", "mean_fitness", "median_fitness", "sigma",
           "validation", "best_validation", "evaluations", "dropped", "agent_steps", "seconds",
           "agent_steps_per_s", "worker_events", "validation_se"]
# Masked models also log the active fraction of the strategy's mean genome: the genome
# that validation scores and mean.npz holds (the population's fractions scatter around it).
MASK_METRICS = ["active_fraction"]

SEED_TASKS, SEED_EVAL, SEED_ES, SEED_INIT = 1, 2, 3, 4


def derived_seed(seed: int, purpose: int, generation: int = 0) -> int:
    """A 32-bit seed from (run seed, purpose, generation), independent of any state."""
    ss = np.random.SeedSequence(seed, spawn_key=(purpose, generation))
    return int(ss.generate_state(1, np.uint32)[0])


class Trainer:
    """One run: its config, strategy, counters and run directory."""

    def __init__(self, cfg: cfglib.ExperimentConfig, run_dir: Path, backend: Any | None = None) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.model = get_model(cfg.model.id, cfg.model.hidden)
        self.spec = lifetime.EvalSpec(cfg.model.id, cfg.model.hidden, cfg.lifetime.profile,
                                      cfg.lifetime.rollouts, cfg.lifetime.weights, cfg.model.frugality,
                                      engine=cfg.lifetime.engine, batch=cfg.workers.batch)
        self.metrics = METRICS + (MASK_METRICS if isinstance(self.model, Masked) else [])
        self._backend = backend
        self.generation = 0
        self.evaluations = 0
        self.best_validation = -math.inf
        self.best_genome: np.ndarray | None = None
        self.best_generation = -1
        self.strategy = None
        self._val_tasks = None
        self._resumed = False
        self.label: str | None = None  # shown on progress lines (a sweep point's name)
        self.tensorboard = False  # also log metric rows to RUN_DIR/tensorboard (tensorboardX)
        self._progress: Progress | None = None  # the live progress display of run()

    # -- setup -------------------------------------------------------------------------------

    @property
    def backend(self):
        if self._backend is None:
            w = self.cfg.workers
            kw = {} if w.backend == "inprocess" else dict(
                workers=w.count, address=w.address, timeout=w.timeout, max_restarts=w.max_restarts)
            self._backend = runner.make_backend(w.backend, self.spec, chunks_per_worker=w.chunks_per_worker, **kw)
        return self._backend

    def prepare(self) -> None:
        """Everything that can fail before a byte is written: the run directory is free for a new
        run (or holds this one), the validation tasks load, the workers start (or the cluster answers)."""
        if self.strategy is None and ckpt.list_checkpoints(self.run_dir):
            raise UserError(f"{self.run_dir} already holds a run; use `evoplastic resume "
                            f"{self.run_dir}` or another --run-dir")
        v = self.cfg.validation
        if self._val_tasks is None:
            self._val_tasks = tasklib.load(v.suite).head(v.count)
        self._start_workers()  # connects to Ray now (saying so), not after the first files are written

    def start(self) -> None:
        """A fresh run: initial mean ~ N(0, init_std^2), a new strategy, validation of generation 0."""
        c = self.cfg
        if ckpt.list_checkpoints(self.run_dir):
            raise UserError(f"{self.run_dir} already holds a run; use `evoplastic resume "
                            f"{self.run_dir}` or another --run-dir")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.run_dir / "config.yaml", lambda f: f.write(cfglib.dump(c).encode()))
        for name in ("metrics.csv", "metrics.jsonl"):
            (self.run_dir / name).unlink(missing_ok=True)
        self._start_workers()
        init = np.random.default_rng(derived_seed(c.seed, SEED_INIT))
        mean0 = (c.strategy.init_std * init.standard_normal(self.model.n_gene)).astype(np.float32)
        if hasattr(self.model, "initial_genome"):  # tied rules (Evolving & Merging): the cluster centres
            mean0 = self.model.initial_genome()
        self.strategy = make_strategy(c.strategy.name, self.model.n_gene, c.strategy.popsize, c.strategy.sigma0,
                                      mean0, np.random.SeedSequence(c.seed, spawn_key=(SEED_ES,)),
                                      segments=self._segments(), **c.strategy.options)
        self._validate_if_due(first=True)
        self._write_metrics({"generation": 0, "sigma": self.strategy.sigma, **self._last_val, **self._mask_row()})
        self.save_checkpoint()

    def _segments(self) -> list[int]:
        return [int(np.prod(s)) for _, s in self.model.param_shapes()]

    @classmethod
    def resume(cls, run_dir: str | Path, workers: dict[str, Any] | None = None, backend: Any | None = None,
               generations: int | None = None, schedule: Any | None = None) -> "Trainer":
        """Load the newest good checkpoint of ``run_dir``.

        ``workers`` may override worker settings and ``generations`` the total; ``config.yaml`` is
        rewritten to the settings that run (with a warning naming any keys that were edited there).
        ``schedule`` (``[[start, tasks], ...]``) replaces ``tasks.schedule`` from the checkpoint's
        generation on, e.g. to add a curriculum phase to a finished run: it must give the same number
        of tasks as the old one at every generation already trained, so the run continues exactly as
        a new run with the new schedule would (``UserError`` otherwise).
        A run stopped before its first checkpoint starts again from its ``config.yaml``: generation 0
        depends only on the config, so it is the same run.
        """
        run_dir = Path(run_dir)
        overrides = {**({"workers": workers} if workers else {}),
                     **({"generations": generations} if generations is not None else {})}
        if schedule is not None:
            overrides["tasks"] = {"schedule": schedule}
        if not ckpt.list_checkpoints(run_dir) and (run_dir / "config.yaml").is_file():
            data = cfglib.apply_dict(cfglib.load(run_dir / "config.yaml").to_dict(), overrides)
            self = cls(cfglib.from_dict(data, f"{run_dir / 'config.yaml'}"), run_dir, backend)
            log.warning("%s: no checkpoint yet (the run stopped before its first one); starting again from "
                        "generation 0 with its config.yaml", run_dir)
            return self
        if not ckpt.list_checkpoints(run_dir) and (run_dir / "command.txt").is_file():
            raise UserError(f"{run_dir}: the run was stopped before it wrote its config.yaml, so there is "
                            "nothing to resume; start it again with `evoplastic train CONFIG --run-dir "
                            f"{run_dir}`")
        arrays, meta, path = ckpt.load_latest(run_dir)
        stored = json.loads(meta["config"])
        old = cfglib.from_dict(cfglib.apply_dict(stored, {k: v for k, v in overrides.items() if k != "tasks"}),
                               f"{path} (config)")
        if old.science_hash() != meta["config_hash"]:
            raise ckpt.CheckpointError(f"{path}: config hash mismatch; the checkpoint was written by another config")
        cfg = cfglib.from_dict(cfglib.apply_dict(stored, overrides), "--schedule") if schedule is not None else old
        done = int(meta["generation"])
        changed = next((g for g in range(done) if cfg.tasks_at(g) != old.tasks_at(g)), None)
        if changed is not None:
            raise UserError(f"--schedule gives {cfg.tasks_at(changed)} tasks at generation {changed + 1}, which this "
                            f"run trained with {old.tasks_at(changed)}; a new schedule may change only generations "
                            f"{done + 1} on")
        self = cls(cfg, run_dir, backend)
        if cfg.tasks.schedule != old.tasks.schedule:
            self._schedule_change = (old.tasks.schedule, cfg.tasks.schedule)
        self.generation = done
        self.evaluations = int(meta["evaluations"])
        self.best_validation = float(meta["best_validation"])
        self.best_generation = int(meta["best_generation"])
        self.best_genome = arrays.pop("best_genome") if "best_genome" in arrays else None
        es = {k[3:]: v for k, v in arrays.items() if k.startswith("es/")}
        self.strategy = restore_strategy(es, segments=self._segments(), **cfg.strategy.options)
        self._overrides = overrides
        self._resumed = True  # run() tidies metrics and config.yaml: resume() itself writes nothing
        log.info("resumed %s at generation %d from %s", run_dir, self.generation, path.name)
        return self

    # -- the loop ----------------------------------------------------------------------------

    def run(self, generations: int) -> None:
        """Run until ``generations`` generations in total are complete (starting the run first if
        it has no generation 0 yet)."""
        main = threading.current_thread() is threading.main_thread()  # sweeps run points in threads
        old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        self._snapshot = None
        progress = self._progress = Progress(generations, self.generation, self.label)
        tb = None
        try:
            if self.strategy is None:
                self.start()
            elif self._resumed:
                self._truncate_metrics()
                self._reconcile_config_file()
                if getattr(self, "_schedule_change", None):
                    before, after = self._schedule_change
                    self._event(f"tasks.schedule changed from generation {self.generation + 1} on: "
                                f"{[list(x) for x in before]} -> {[list(x) for x in after]}")
                    self._schedule_change = None
                self._resumed = False
            self._snapshot = self._checkpoint_arrays()
            progress.validation = getattr(self, "_last_val", {}).get("validation") or last_validation(self.run_dir)
            write_target(self.run_dir, generations)
            tb = open_tensorboard(self.run_dir) if self.tensorboard else None
            if self.generation < generations:
                self._start_workers()
                progress.say(f"training generations {self.generation + 1}..{generations} "
                             f"({self.cfg.strategy.popsize} genomes a generation, {self.cfg.tasks.repeats} "
                             f"lifetime{'s' if self.cfg.tasks.repeats != 1 else ''} per task)")
            while self.generation < generations:
                row = self.step()
                if self.generation % self.cfg.checkpoint.interval == 0:
                    self.save_checkpoint()
                progress.update(row, self.best_validation)
                if tb is not None:
                    tb.add(row)
            self.save_checkpoint()
        except Stop:
            if self._snapshot is None:
                self._event("stopped by a signal before generation 0 was checkpointed")
                raise
            self._event(f"stopped by a signal during generation {self.generation + 1}; "
                        f"checkpointing generation {self.generation}")
            self.save_checkpoint(from_snapshot=True)
            raise
        except NoWorkersError as exc:
            if self._snapshot is None:
                raise
            self._event(f"{exc}; checkpointing generation {self.generation}")
            self.save_checkpoint(from_snapshot=True)
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            progress.close()
            self._progress = None
            if tb is not None:
                tb.close()

    def step(self) -> dict[str, Any]:
        """One generation: sample tasks, ask, evaluate, tell, validate when due."""
        c, g = self.cfg, self.generation
        t0 = time.perf_counter()
        n_tasks = c.tasks_at(g)
        ts = tasklib.generate(n_tasks, c.tasks.size, c.tasks.crowd_ratio, seed=derived_seed(c.seed, SEED_TASKS, g))
        events_before = len(getattr(self.backend, "events", []))
        genomes = self.strategy.ask()
        res = self.backend.evaluate(genomes, ts, c.tasks.repeats, derived_seed(c.seed, SEED_EVAL, g))
        fit = res.fitness
        bad = ~np.isfinite(fit)
        if bad.any():
            self._event(f"generation {g + 1}: {int(bad.sum())} non-finite fitness value(s) "
                        f"(genomes {np.flatnonzero(bad)[:10].tolist()}); dropped from the update")
        self.strategy.tell(fit)
        self.generation += 1
        self.evaluations += len(genomes)
        self._validate_if_due()
        seconds = time.perf_counter() - t0
        good = fit[~bad]
        events = getattr(self.backend, "events", [])[events_before:]
        for e in events:
            self._event(f"generation {g + 1}: {e}")
        row = {"generation": self.generation, "tasks": n_tasks,
               "best_fitness": float(good.max()) if good.size else float("nan"),
               "mean_fitness": float(good.mean()) if good.size else float("nan"),
               "median_fitness": float(np.median(good)) if good.size else float("nan"),
               "sigma": float(self.strategy.sigma), "evaluations": self.evaluations,
               "dropped": int(bad.sum()), "agent_steps": res.agent_steps, "seconds": round(seconds, 4),
               "agent_steps_per_s": round(res.agent_steps / seconds, 1), "worker_events": len(events),
               **self._last_val, **self._mask_row()}
        self._write_metrics(row)
        self._snapshot = self._checkpoint_arrays()
        return row

    def _mask_row(self) -> dict[str, Any]:
        """The mean genome's active fraction, for masked models (MASK_METRICS)."""
        active = self.model.active_fraction(self.strategy.mean.astype(np.float32)[None])
        return {} if active is None else {"active_fraction": float(active[0])}

    # -- validation --------------------------------------------------------------------------

    def _validate_if_due(self, first: bool = False) -> None:
        self._last_val = {}
        if not first and self.generation % self.cfg.validation.interval:
            return
        v = self.cfg.validation
        if self._val_tasks is None:
            self._val_tasks = tasklib.load(v.suite).head(v.count)
        mean = self.strategy.mean.astype(np.float32)
        res = self.backend.evaluate(mean[None], self._val_tasks, v.repeats, v.seed)
        score = float(res.fitness[0])
        if score > self.best_validation:
            self.best_validation, self.best_genome, self.best_generation = score, mean.copy(), self.generation
        self._last_val = {"validation": score, "best_validation": self.best_validation,
                          "validation_se": res.summary(0)["weighted_se"]}  # over validation lifetimes

    # -- checkpoints and files ---------------------------------------------------------------

    def _checkpoint_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"es/{k}": v for k, v in self.strategy.state().items()}
        if self.best_genome is not None:
            arrays["best_genome"] = self.best_genome
        arrays["mean_genome"] = self.strategy.mean.astype(np.float32)
        meta = {"generation": self.generation, "evaluations": self.evaluations,
                "best_validation": self.best_validation, "best_generation": self.best_generation,
                "config": json.dumps(self.cfg.to_dict()), "config_hash": self.cfg.science_hash(),
                "strategy": self.cfg.strategy.name, "model": self.cfg.model.id, "hidden": self.cfg.model.hidden}
        return arrays, meta

    def save_checkpoint(self, from_snapshot: bool = False) -> Path:
        arrays, meta = self._snapshot if from_snapshot else self._checkpoint_arrays()
        path = ckpt.save(self.run_dir, meta["generation"], arrays, meta, keep=self.cfg.checkpoint.keep)
        m = self.cfg.model
        genome_io.save(self.run_dir / "mean.npz", arrays["mean_genome"], m.id, m.hidden,
                       generation=meta["generation"], source=str(self.run_dir))
        if "best_genome" in arrays:
            genome_io.save(self.run_dir / "best.npz", arrays["best_genome"], m.id, m.hidden,
                           generation=meta["best_generation"], validation=meta["best_validation"],
                           source=str(self.run_dir))
        log.info("checkpoint %s", path.name)
        return path

    def _write_metrics(self, row: dict[str, Any]) -> None:
        full = {k: row.get(k, "") for k in self.metrics}
        csv_path = self.run_dir / "metrics.csv"
        new = not csv_path.exists()
        # a run resumed from an older version keeps its file's columns
        fields = self.metrics if new else csv_path.open().readline().strip().split(",")
        with open(csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(full)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({k: v for k, v in full.items() if v != ""}) + "\n")

    def _truncate_metrics(self) -> None:
        """Drop metric rows past the checkpoint (a run killed between checkpoints wrote them) and a
        torn last line (one killed while writing it); the files are replaced atomically."""
        for name in ("metrics.jsonl", "metrics.csv"):
            path = self.run_dir / name
            if not path.exists():
                continue
            lines = path.read_text().splitlines(keepends=True)
            keep = [ln for i, ln in enumerate(lines) if ln.endswith("\n") and (
                name.endswith(".csv") and i == 0 or _metrics_generation(ln) <= self.generation)]
            if keep != lines:
                write_atomic(path, lambda f: f.write("".join(keep).encode()))

    def _reconcile_config_file(self) -> None:
        """Warn about keys of config.yaml edited since the checkpoint, then write the config that runs."""
        path = self.run_dir / "config.yaml"
        try:
            on_disk = cfglib.load(path).to_dict()
        except (UserError, OSError) as exc:
            on_disk = None
            self._event(f"{path} is unreadable ({exc}); rewriting it from the checkpoint")
        if on_disk is not None:
            edited = cfglib.differing_keys(cfglib.apply_dict(on_disk, self._overrides), self.cfg.to_dict())
            if edited:
                self._event(f"{path} was edited since the checkpoint ({', '.join(edited)}); a resumed run "
                            "keeps the checkpoint's settings, so config.yaml is rewritten to them (use "
                            "--generations/--workers to change those, or a new run for the rest)")
        write_atomic(path, lambda f: f.write(cfglib.dump(self.cfg).encode()))

    def _event(self, text: str) -> None:
        log.warning(text)
        with open(self.run_dir / "events.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def _say(self, text: str) -> None:
        """A line now, labelled with the sweep point (ends a live progress line first)."""
        (self._progress or Progress(0, label=self.label)).say(text)

    def _start_workers(self) -> None:
        """Start the backend now, saying so first: Ray start-up and kernel compilation take a while."""
        if self._backend is not None:
            return
        w = self.cfg.workers
        if w.backend == "inprocess":
            self._say(f"{self.run_dir}: evaluating in this process; the lifetime kernels compile on first use...")
            return
        from evoplastic.localray import usable_cpus

        where = f"the Ray cluster at {w.address}" if w.address else "a local Ray instance"
        count = (f"{w.count} worker{'s' if w.count != 1 else ''}" if w.count else "one worker per CPU" if w.address
                 else f"{usable_cpus()} workers (one per usable CPU)")
        self._say(f"{self.run_dir}: starting {count} on {where}; they compile the lifetime kernels...")
        t0 = time.perf_counter()
        n = self.backend.workers
        self._say(f"{n} worker{'s' if n != 1 else ''} ready in {time.perf_counter() - t0:.1f} s")

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def _metrics_generation(line: str) -> int:
    """The generation of a metrics.csv or metrics.jsonl row; a large number if it is unreadable
    (so the row is dropped)."""
    try:
        return int(json.loads(line)["generation"]) if line.startswith("{") else int(line.split(",", 1)[0])
    except (ValueError, KeyError, TypeError):
        return 1 << 62


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def record_command(run_dir: Path, argv: list[str]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "command.txt", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n")
