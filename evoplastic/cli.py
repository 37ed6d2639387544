"""The ``evoplastic`` command line: one command, subcommands.

Expected errors (:class:`~evoplastic.errors.UserError`, file-system errors) are one line, exit 2;
SIGINT/SIGTERM stop a command at any moment with a true account of what was kept, exit 130; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from evoplastic import __version__
from evoplastic.errors import Stop, UserError

DESCRIPTION = """\
Evolve plastic neural networks that learn 2D mazes within their lifetime (Wang et al., TMLR 2022,
"Evolving Decomposed Plasticity Rules for Information-Bottlenecked Meta-Learning").

examples:
  evoplastic train experiments/quickstart.yaml --run-dir runs/quickstart   # train (about 3 min on 2 cores)
  evoplastic eval runs/quickstart --tasks maze9,maze15 --count 256         # test its best genome
  evoplastic reference fetch && evoplastic eval paper-genome --profile reference-2022-08 --tasks paper-maze9

'evoplastic COMMAND --help' describes a command. The README (README.md in the repository,
https://github.com/WorldEditors/EvolvingPlasticANN for the paper's own code) walks through
reproducing the paper; docs/method.md states the method.
"""


def _csv_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _nonneg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _task_list(text: str) -> list[str]:
    """Comma-separated suites or task files."""
    return [t.strip() for t in text.split(",") if t.strip()]


# -- tasks -------------------------------------------------------------------------------------

def _cmd_tasks_make(args: argparse.Namespace) -> int:
    from evoplastic.envs import tasks

    t0 = time.perf_counter()
    ts = tasks.generate(args.count, args.size, args.crowd, args.seed, name=args.name)
    elapsed = time.perf_counter() - t0
    tasks.save(ts, args.out)
    print(f"wrote {len(ts)} tasks ({ts.size}x{ts.size}, crowd {args.crowd}, seed {args.seed}) "
          f"to {args.out} in {elapsed:.2f} s; digest {ts.digest()[:16]}")
    return 0


def _cmd_tasks_show(args: argparse.Namespace) -> int:
    from evoplastic.envs import tasks

    ts = tasks.load(args.source)
    info = ts.summary()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>26}: {v}")
    for i in args.render or []:
        print(f"\ntask {i}: start {tuple(int(x) for x in ts.start[i])}, goal "
              f"{tuple(int(x) for x in ts.goal[i])}")
        print(ts.render(i))
    return 0


def _cmd_tasks_list(args: argparse.Namespace) -> int:
    from evoplastic.envs.tasks import SUITES

    print(f"{'suite':<22} {'size':>4} {'crowd':>6} {'tasks':>6} {'seed':>9}  about")
    for name, s in SUITES.items():
        print(f"{name:<22} {s.size:>4} {s.crowd_ratio:>6.2f} {s.count:>6} {s.seed:>9}  {s.doc}")
    return 0


# -- baseline ----------------------------------------------------------------------------------

def _cmd_baseline(args: argparse.Namespace) -> int:
    from evoplastic import baselines
    from evoplastic.envs import tasks
    from evoplastic.results import format_table, write_json

    out = []
    for spec in args.tasks:
        ts = tasks.load(spec).head(args.count)
        t0 = time.perf_counter()
        res = baselines.evaluate(args.kind, ts, args.rollouts, args.repeats, args.seed, args.weights,
                                 args.encoding)
        res["suite"], res["source"] = ts.name, spec
        res["seconds"] = round(time.perf_counter() - t0, 3)
        out.append(res)
    if args.json:
        write_json(out[0] if len(out) == 1 else out, args.json)
    if args.json != "-":
        w = ", ".join(f"{x:g}" for x in out[0]["weights"])
        print(format_table(out, f"{args.kind} baseline: {args.rollouts} rollouts (weights {w}), "
                                f"{args.repeats} repeat(s), seed {args.seed}"))
    return 0


# -- models, eval, bench -------------------------------------------------------------------------

def _cmd_models(args: argparse.Namespace) -> int:
    from evoplastic.models import DERIVED_IDS, MASKABLE_IDS, MODEL_IDS, get_model
    from evoplastic.results import write_json

    rows = [get_model(m, args.hidden).describe() for m in MODEL_IDS + DERIVED_IDS]
    if args.json:
        write_json(rows, args.json)
    if args.json != "-":
        print(f"{'model':<16} {'hidden':>6} {'N_Gene':>8} {'N_Mem':>7} {'N_Mem/N_Gene':>13}  about")
        for r in rows:
            print(f"{r['id']:<16} {r['hidden']:>6} {r['n_gene']:>8,} {r['n_mem']:>7,} "
                  f"{r['bottleneck']:>13.3f}  {r['doc']}")
        print("\n<id>+mask adds a structure mask (one gene per hidden unit, N_Gene + hidden; a unit is "
              "active where its gene > 0)\n"
              f"to a recurrent model: {', '.join(MASKABLE_IDS)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from evoplastic import config as cfglib
    from evoplastic import train

    cfg = cfglib.load(args.config, _overrides(args))
    run_dir = Path(args.run_dir)
    with _owning(run_dir):
        return _train(train.Trainer(cfg, run_dir), run_dir, args.generations, args.tensorboard)


def _train(trainer, run_dir: Path, generations: int | None = None, tensorboard: bool = False) -> int:
    """Prepare (nothing written if that fails), record the command, run to ``generations`` (default:
    the config's), report (``tensorboard``: also log metric rows to RUN_DIR/tensorboard)."""
    from evoplastic import train

    trainer.tensorboard = tensorboard
    try:
        trainer.prepare()
        train.record_command(run_dir, sys.argv)
        trainer.run(trainer.cfg.generations if generations is None else generations)
    finally:
        trainer.close()
    print(f"run directory: {run_dir} (generation {trainer.generation}, best validation "
          f"{trainer.best_validation:.4f} at generation {trainer.best_generation})")
    return 0


@contextlib.contextmanager
def _owning(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock; a stop on the way out says what the run directory now holds."""
    from evoplastic.dirlock import DirLock

    try:
        with DirLock(run_dir, "run directory"):
            yield
    except (Stop, KeyboardInterrupt) as exc:
        raise Stop(f"{_signal_name(exc)}; {_kept(run_dir)}") from None


def _kept(run_dir: Path) -> str:
    """What a stopped run left: the generation to resume from, or that there is nothing yet."""
    from evoplastic import checkpoint as ckpt

    gens = [int(p.name[5:12]) for p in ckpt.list_checkpoints(run_dir)]
    if gens:
        return (f"generation {max(gens)} is checkpointed in {run_dir}; `evoplastic resume {run_dir}` "
                "continues the run")
    if (run_dir / "config.yaml").is_file():
        return (f"no generation was checkpointed yet; `evoplastic resume {run_dir}` starts the run "
                "from generation 0")
    return f"nothing was written to {run_dir}"


def _signal_name(exc: BaseException) -> str:
    name = exc.args[0] if isinstance(exc, Stop) and exc.args else "SIGINT"
    return f"stopped by {name}" if str(name).startswith("SIG") else str(name)


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(args.set or [])
    if getattr(args, "workers", None) is not None:
        out.append(f"workers.count={args.workers}")
    if getattr(args, "address", None) is not None:
        out.append(f"workers.address={args.address}")
    if getattr(args, "backend", None) is not None:
        out.append(f"workers.backend={args.backend}")
    return out


def _cmd_resume(args: argparse.Namespace) -> int:
    from evoplastic import train

    workers = {k: v for k, v in (("count", args.workers), ("address", args.address), ("backend", args.backend))
               if v is not None}
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    with _owning(run_dir):
        return _train(train.Trainer.resume(run_dir, workers, generations=args.generations,
                                           schedule=_schedule_arg(args.schedule)), run_dir,
                      tensorboard=args.tensorboard)


def _schedule_arg(text: str | None) -> list[list[int]] | None:
    """``--schedule '[[0,4],[1500,8]]'`` as a list of [start, tasks] pairs (``UserError`` if malformed)."""
    import yaml

    if text is None:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"--schedule {text!r}: not a YAML list ({str(exc).splitlines()[0]})") from None
    if (not isinstance(value, list) or not value
            or not all(isinstance(p, list) and len(p) == 2 and all(type(x) is int for x in p) for p in value)):
        raise UserError(f"--schedule {text!r}: expected a list of [start generation, tasks] pairs, "
                        "e.g. '[[0,4],[1500,8]]'")
    return value


def _shutdown_ray() -> None:
    """Stop the Ray instance a command started (if it imported Ray at all)."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


def _cmd_sweep(args: argparse.Namespace) -> int:
    import dataclasses

    from evoplastic import sweep

    workers, args.workers = args.workers, None  # --workers is the sweep's total, not each point's
    sw = sweep.load(args.sweep, _overrides(args))
    parallel = args.parallel or sw.parallel
    if workers is not None:  # shared between the points that run side by side
        sw = sweep.load(args.sweep, _overrides(args) + [f"workers.count={max(1, workers // parallel)}"])
    sw = dataclasses.replace(sw, parallel=parallel)
    out = Path(args.out or Path("runs") / sw.name)
    from evoplastic.dirlock import DirLock

    try:
        with DirLock(out, "sweep directory"):
            sweep.run(sw, out, sys.argv, tensorboard=args.tensorboard)
    except (Stop, KeyboardInterrupt) as exc:
        raise Stop(f"{_signal_name(exc)}; each point keeps its newest checkpoint; `evoplastic sweep "
                   f"{args.sweep} --out {out}` continues the sweep") from None
    finally:
        _shutdown_ray()
    print((out / "summary.md").read_text())
    print(f"sweep directory: {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from evoplastic.report import write_report

    try:
        files = write_report(Path(args.path), Path(args.out) if args.out else None,
                             mazes=args.mazes, suite=args.suite, seed=args.seed)
    except ImportError as exc:  # matplotlib missing
        raise UserError(str(exc)) from None
    for f in files:
        print(f)
    return 0


def _cmd_bench_generation(args: argparse.Namespace) -> int:
    from evoplastic.bench import bench_generation, format_generation
    from evoplastic.results import write_json

    res = bench_generation(workers=args.workers, popsize=args.popsize, tasks=args.tasks,
                           repeats=args.repeats, size=args.size, model_id=args.model, repeat=args.repeat,
                           engine=args.engine)
    if args.json:
        write_json(res, args.json)
    if args.json != "-":
        print(format_generation(res))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from evoplastic import evaluate
    from evoplastic.results import format_table, write_json

    sources = evaluate.resolve(args.source, args.genome, args.model, args.hidden)
    suites, protocol = evaluate.expand_protocols(args.tasks)
    repeats = args.repeats if args.repeats is not None else protocol.get("repeats", 1)
    count = args.count if args.count is not None else protocol.get("count")
    try:
        rows = evaluate.evaluate_sources(sources, suites, repeats=repeats, rollouts=args.rollouts,
                                         weights=args.weights, seed=args.seed, profile=args.profile,
                                         count=count, backend=args.backend, workers=args.workers,
                                         address=args.address, engine=args.engine)
    finally:
        _shutdown_ray()
    if args.json:
        write_json(rows[0] if len(rows) == 1 else rows, args.json)
    if args.csv:
        evaluate.write_csv(rows, args.csv)
    if args.json != "-":
        w = ", ".join(f"{x:g}" for x in rows[0]["weights"])
        for src in sources:
            mine = [r for r in rows if r["genome"] == src.label]
            print(format_table(mine, f"{src.model} (hidden {src.hidden}) from {src.label}: profile {args.profile}, "
                                     f"{rows[0]['rollouts']} rollouts (weights {w}), {repeats} repeat(s), "
                                     f"seed {args.seed}"))
    return 0


def _cmd_import_reference(args: argparse.Namespace) -> int:
    from evoplastic import reference

    from evoplastic import reference_files

    path = reference_files.lookup(args.checkpoint, "genome") or args.checkpoint
    model = args.model or (reference_files.FILES[args.checkpoint].model if path != args.checkpoint else None)
    if model is None:
        raise ValueError(f"{args.checkpoint}: a reference checkpoint names no model; pass --model")
    out, meta = reference.import_to_file(path, model, args.hidden, args.out)
    print(f"wrote {model} (hidden {args.hidden}) genome to {out}: mean vector of {args.checkpoint} "
          f"(generation {meta['generation']}, sigma {meta['sigma']:.4g}, {meta['source_format']} format, "
          f"sha256 {meta['source_sha256'][:16]})")
    return 0


def _cmd_reference_fetch(args: argparse.Namespace) -> int:
    from evoplastic import reference_files as rf

    dest = Path(args.dest) if args.dest else rf.cache_dir()
    try:
        rf.fetch(dest, Path(args.source) if args.source else None)
    except rf.FetchError as exc:
        print(f"evoplastic: error: {exc}", file=sys.stderr)
        return 2
    if dest.resolve() != rf.cache_dir().resolve():
        print(f"short names look in {rf.cache_dir()}; to use them with {dest}: export {rf.ENV_DIR}={dest}")
    else:
        print("use them by short name, e.g. evoplastic eval paper-genome --profile reference-2022-08 "
              "--tasks paper-maze9 --count 256")
    return 0


def _cmd_reference_list(args: argparse.Namespace) -> int:
    from evoplastic import reference_files as rf

    print(f"cache: {rf.cache_dir()} (set {rf.ENV_DIR} to move it)")
    for f, path, present in rf.status():
        print(f"{f.name:<13} {'installed' if present else 'missing':<9}  {f.about}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from evoplastic import status
    from evoplastic.results import write_json

    rows = [status.run_status(p) for p in status.run_dirs(Path(args.path))]
    if args.json:
        write_json(rows, args.json)
    if args.json != "-":
        print(status.format_status(rows))
    return 0


def _cmd_estimate(args: argparse.Namespace) -> int:
    from evoplastic import config as cfglib
    from evoplastic import estimate

    est = estimate.estimate(args.config, args.workers, args.seconds)
    print(estimate.format_estimate(est, cfglib.load(args.config)))
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    from evoplastic import evaluate, play
    from evoplastic.envs import tasks as tasklib
    from evoplastic.models import get_model

    (src,) = evaluate.resolve(args.genome, args.which, args.model, args.hidden)[:1]
    profile = args.profile or play.default_profile(src)
    ts = tasklib.load(args.tasks or play.default_tasks(src))
    mode = "rgb_array" if args.render == "gif" else "ansi"
    life = play.replay(get_model(src.model, src.hidden), src.genome, ts, args.task, profile, args.seed,
                       args.rollouts, mode)
    print(f"{src.label}: {src.model} (hidden {src.hidden}), profile {profile}, task #{args.task} of {ts.name}, "
          f"seed {args.seed}")
    if args.render == "gif":
        out = Path(args.out or f"play-{Path(src.label).stem}-{ts.name}-{args.task}.gif")
        try:
            play.write_gif(life, out, args.fps)
        except ImportError as exc:
            print(f"evoplastic: error: {exc}", file=sys.stderr)
            return 2
        for r in range(len(life.returns)):
            print(f"rollout {r + 1}: return {life.returns[r]:+.2f} in {life.steps[r]} steps")
        print(f"wrote {out}")
    else:
        play.show_ansi(life, sys.stdout, 1.0 / args.fps, animate=play.stdout_is_tty() and not args.no_animate)
    return 0


def _cmd_bench_lifetime(args: argparse.Namespace) -> int:
    from evoplastic.bench import bench_lifetime, format_lifetime
    from evoplastic.results import write_json

    engines = ("fused", "lockstep") if args.engine == "both" else (args.engine,)
    res = bench_lifetime(args.model, args.size, args.batch, args.hidden, args.seconds, engines)
    if args.json:
        write_json(res, args.json)
    if args.json != "-":
        print(format_lifetime(res))
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from evoplastic import merge

    cfg, tying_path, tying = merge.merge_run(args.run_dir, args.out, args.clusters, args.genome, args.seed)
    d = merge.describe(tying)
    print(f"tied {d['connections']:,} rules of {args.run_dir} ({args.genome} genome) into K = {d['k']} "
          f"clusters ({d['clusters_used']} used, largest {d['largest_cluster']}, inertia {d['inertia']:.4g}); "
          f"N_Gene {d['n_gene']:,}\nwrote {tying_path} and {cfg}; train it with `evoplastic train {cfg} --run-dir DIR`")
    return 0


def _cmd_analyze_memory(args: argparse.Namespace) -> int:
    from evoplastic import evaluate
    from evoplastic.analysis import memory
    from evoplastic.envs import tasks as tasklib
    from evoplastic.models import get_model

    (src,) = evaluate.resolve(args.genome, args.which, args.model, args.hidden)
    model = get_model(src.model, src.hidden)
    ts = tasklib.load(args.tasks).head(args.count)
    files, stats = memory.write_analysis(model, src.genome, ts, Path(args.out), f"{src.label} ({model.id.split('@')[0]})",
                                         args.repeats, args.rollouts, args.profile, args.seed, args.embedding)
    print(memory.format_table(stats, f"{src.label} ({model.id.split('@')[0]})"))
    for f in files:
        print(f)
    return 0


def _cmd_analyze_structure(args: argparse.Namespace) -> int:
    from evoplastic import evaluate
    from evoplastic.analysis import structure
    from evoplastic.envs import tasks as tasklib
    from evoplastic.models import get_model

    (src,) = evaluate.resolve(args.genome, args.which, args.model, args.hidden)
    model = get_model(src.model, src.hidden)
    ts = tasklib.load(args.tasks).head(args.count)
    title = f"{src.label} ({model.id})"
    files, m = structure.write_analysis(model, src.genome, ts, Path(args.out), title, args.repeats,
                                        args.rollouts, args.profile, args.seed, args.threshold)
    print(structure.format_table(m, title))
    for f in files:
        print(f)
    return 0


# -- parser ------------------------------------------------------------------------------------

def _run_options(p: argparse.ArgumentParser, whose: str) -> None:
    """Worker and logging options of train and resume; ``whose`` says where their defaults come from."""
    p.add_argument("--workers", type=_positive, default=None,
                   help=f"worker actors (default: {whose}, else one per CPU this process may use)")
    p.add_argument("--address", default=None,
                   help=f"Ray cluster to join: auto or HOST:PORT (default: {whose}, else a local instance)")
    p.add_argument("--backend", choices=["ray", "inprocess"], default=None,
                   help=f"ray: worker actors; inprocess: one process, no Ray (default: {whose})")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log the metrics to RUN_DIR/tensorboard for TensorBoard (needs evoplastic[tensorboard])")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evoplastic", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"evoplastic {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("tasks", help="make, show and list maze task sets")
    tsub = t.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    mk = tsub.add_parser("make", help="generate a task set and save it as .npz")
    mk.add_argument("--size", type=int, required=True, help="maze side n in cells (odd, >= 7)")
    mk.add_argument("--crowd", type=float, required=True,
                    help="crowd ratio: interior wall fraction to stop at, in [0, 1), e.g. 0.35")
    mk.add_argument("--count", type=_positive, required=True, help="number of tasks (mazes)")
    mk.add_argument("--seed", type=_nonneg, required=True, help="generator seed (same seed, same mazes)")
    mk.add_argument("--name", default=None, help="name stored in the metadata (default: the file's stem)")
    mk.add_argument("--out", required=True, help="output .npz file")
    mk.set_defaults(func=_cmd_tasks_make)
    sh = tsub.add_parser("show", help="summarise a suite or task file, optionally render mazes")
    sh.add_argument("source", help="suite name (evoplastic tasks list), paper-maze9 / paper-maze15, .npz task "
                                   "file or reference .dat file")
    sh.add_argument("--render", type=_nonneg, nargs="*", metavar="I", help="render task(s) I as text")
    sh.add_argument("--json", action="store_true", help="print the summary as JSON")
    sh.set_defaults(func=_cmd_tasks_show)
    ls = tsub.add_parser("list", help="list the named suites")
    ls.set_defaults(func=_cmd_tasks_list)

    b = sub.add_parser("baseline", help="run the Oracle or Random baseline as lifetimes")
    b.add_argument("kind", choices=["oracle", "random"],
                   help="oracle: shortest path knowing the maze; random: uniform random actions")
    b.add_argument("--tasks", type=_task_list, required=True, metavar="SUITE_OR_FILE[,...]",
                   help="suite name(s), paper-maze9/paper-maze15, or task file(s), comma-separated")
    b.add_argument("--rollouts", type=_positive, default=3, help="rollouts (episodes) per lifetime (default 3)")
    b.add_argument("--repeats", type=_positive, default=1, help="lifetimes per task (default 1)")
    b.add_argument("--count", type=_positive, default=None, help="use only the first N tasks (default: all)")
    b.add_argument("--seed", type=_nonneg, default=0, help="seed of the random actions (default 0)")
    b.add_argument("--weights", type=_csv_floats, default=None,
                   help="rollout weights, comma-separated (default: method §2's for that many rollouts)")
    b.add_argument("--encoding", choices=["v1", "v2"], default="v2",
                   help="observation encoding, method §1 (default v2)")
    b.add_argument("--json", metavar="OUT", default=None, help="write the result as JSON ('-': stdout)")
    b.set_defaults(func=_cmd_baseline)

    m = sub.add_parser("models", help="list the models with N_Gene, N_Mem and the bottleneck factor")
    m.add_argument("--hidden", type=_positive, default=64, help="hidden units (default 64)")
    m.add_argument("--json", metavar="OUT", default=None, help="write the list as JSON ('-': stdout)")
    m.set_defaults(func=_cmd_models)

    e = sub.add_parser("eval", help="evaluate a saved genome on suites or task files")
    e.add_argument("source", help="genome .npz, run directory, sweep directory, paper-genome (after "
                                  "`evoplastic reference fetch`), or a reference checkpoint .dat (needs --model)")
    e.add_argument("--genome", choices=["best", "mean"], default="best",
                   help="for a run directory: the best-validated (default) or the current mean genome")
    e.add_argument("--model", default=None, help="model id (default: the one stored with the genome)")
    e.add_argument("--hidden", type=_positive, default=None, help="hidden units (default: stored, else 64)")
    e.add_argument("--tasks", type=_task_list, required=True, metavar="SUITE_OR_FILE[,...]",
                   help="suites, paper-maze9/paper-maze15, task files, or evaluation protocol YAMLs "
                        "(experiments/ood-from-*.yaml), comma-separated; a suite or file may take a "
                        "slice, e.g. maze9-val[512:] (tasks 512 to the end)")
    e.add_argument("--rollouts", type=_positive, default=None,
                   help="rollouts per lifetime (default: the profile's, 3 or 8)")
    e.add_argument("--weights", type=_csv_floats, default=None,
                   help="rollout weights, comma-separated (default: method §2's for that many rollouts)")
    e.add_argument("--repeats", type=_positive, default=None, help="lifetimes per task (default: protocol's, else 1)")
    e.add_argument("--count", type=_positive, default=None,
                   help="use only the first N tasks of each suite (default: protocol's, else all)")
    e.add_argument("--seed", type=_nonneg, default=0, help="seed of the lifetimes' action sampling (default 0)")
    e.add_argument("--profile", default="evoplastic", choices=["evoplastic", "reference-2022-08"],
                   help="lifetime conventions: evoplastic (default) or reference-2022-08, the one the "
                        "paper-genome was trained with (method §5)")
    e.add_argument("--json", metavar="OUT", default=None, help="write the result as JSON ('-': stdout)")
    e.add_argument("--csv", metavar="OUT", default=None, help="write one line per genome and suite as CSV")
    e.add_argument("--backend", choices=["auto", "ray", "inprocess"], default="auto",
                   help=f"auto (default): Ray workers from {1024:,} lifetimes per suite, else in-process")
    e.add_argument("--workers", type=_positive, default=None,
                   help="Ray workers (default: one per CPU this process may use)")
    e.add_argument("--address", default=None, help="Ray cluster to join: auto or HOST:PORT")
    e.add_argument("--engine", choices=["auto", "fused", "lockstep"], default="auto",
                   help="lifetime engine: auto (default: fused where it covers the model), fused, lockstep; "
                        "results are the same")
    e.set_defaults(func=_cmd_eval)

    tr = sub.add_parser("train", help="train from a YAML experiment config")
    tr.add_argument("config", help="experiment YAML (see experiments/)")
    tr.add_argument("--run-dir", required=True, help="directory for checkpoints, metrics and genomes (a new one)")
    tr.add_argument("--generations", type=_nonneg, default=None,
                    help="generation to stop at (default: the config's generations)")
    tr.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                    help="override a config value, e.g. strategy.popsize=80 (repeatable)")
    _run_options(tr, "the config's")
    tr.set_defaults(func=_cmd_train)
    rs = sub.add_parser("resume", help="continue a run from its newest good checkpoint",
                        description="Continue a run exactly where its newest good checkpoint left it (the "
                                    "same results as an uninterrupted run, whatever the worker count).")
    rs.add_argument("run_dir", metavar="RUN_DIR", help="the run directory given to train --run-dir")
    rs.add_argument("--generations", type=_nonneg, default=None,
                    help="generation to stop at (default: the run's config)")
    rs.add_argument("--schedule", metavar="YAML", default=None,
                    help="new tasks.schedule, e.g. '[[0,4],[1500,8],[5000,16],[14000,32]]': it may change only "
                         "generations not yet trained (adds a curriculum phase to a run)")
    _run_options(rs, "the run's")
    rs.set_defaults(func=_cmd_resume)
    ref = sub.add_parser("reference", help="the paper's published genome and task sets (fetch, list)")
    rsub = ref.add_subparsers(dest="reference_command", required=True, metavar="ACTION")
    rf = rsub.add_parser("fetch", help="download the paper's files into the cache (checksums verified)",
                         description="Install the paper's trained genome (paper-genome) and task sets "
                                     "(paper-maze9, paper-maze15) from WorldEditors/EvolvingPlasticANN at "
                                     "pinned commits, about 9 MB; SHA-256 checked. Files already present "
                                     "are kept.")
    rf.add_argument("--dest", metavar="DIR", default=None,
                    help="install here instead (default: $EVOPLASTIC_REFERENCE_DIR, else "
                         "$XDG_CACHE_HOME/evoplastic/reference, else ~/.cache/evoplastic/reference)")
    rf.add_argument("--from", dest="source", metavar="DIR", default=None,
                    help="copy from a local folder instead of downloading (files matched by SHA-256, any names)")
    rf.set_defaults(func=_cmd_reference_fetch)
    rl = rsub.add_parser("list", help="the short names, what they are, and whether they are installed")
    rl.set_defaults(func=_cmd_reference_list)

    ir = sub.add_parser("import-reference", help="import the paper code's checkpoint as a genome .npz")
    ir.add_argument("checkpoint", help="reference checkpoint .dat (8 pickles, method §6), or paper-genome")
    ir.add_argument("--model", default=None,
                    help="model id the checkpoint was trained as (default for paper-genome: decprnn-postdn)")
    ir.add_argument("--hidden", type=_positive, default=64, help="hidden units (default 64)")
    ir.add_argument("--out", required=True, help="output genome .npz")
    ir.set_defaults(func=_cmd_import_reference)

    mg = sub.add_parser("merge", help="Evolving & Merging: tie a PRNN run's rules by K-means, write a config")
    mg.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a prnn, prnn-predn or prnn-postdn model")
    mg.add_argument("--clusters", type=_positive, default=None,
                    help="K (default 3*hidden+15 = 207: the N_Gene of the matching DecPRNN)")
    mg.add_argument("--out", required=True, metavar="CONFIG.yaml",
                    help="config to write; the tying goes beside it as <stem>.tying.npz")
    mg.add_argument("--genome", choices=["best", "mean"], default="best", help="which genome of the run")
    mg.add_argument("--seed", type=_nonneg, default=0, help="K-means seed")
    mg.set_defaults(func=_cmd_merge)

    an = sub.add_parser("analyze", help="analyses of a genome: what the memories hold, structure measures")
    asub = an.add_subparsers(dest="analyze_command", required=True, metavar="WHAT")
    am = asub.add_parser("memory", help="record W and h along lifetimes, embed them, decode the maze (Fig. 7)")
    am.add_argument("genome", metavar="GENOME", help="genome .npz, run directory, or reference .dat (needs --model)")
    am.add_argument("--which", choices=["best", "mean"], default="best", help="for a run directory")
    am.add_argument("--model", default=None, help="model id (default: the one stored with the genome)")
    am.add_argument("--hidden", type=_positive, default=None, help="hidden units (default: stored, else 64)")
    am.add_argument("--tasks", required=True, metavar="SUITE_OR_FILE", help="suite name or task file")
    am.add_argument("--count", type=_positive, default=6, help="mazes (the first N tasks; default 6)")
    am.add_argument("--repeats", type=_positive, default=4, help="lifetimes per maze (default 4)")
    am.add_argument("--rollouts", type=_positive, default=None, help="default: the profile's")
    am.add_argument("--profile", default="evoplastic", help="evaluation profile (reference-2022-08 for the paper's genome)")
    am.add_argument("--seed", type=_nonneg, default=0, help="seed of the lifetimes' action sampling (default 0)")
    am.add_argument("--embedding", choices=["pca", "tsne"], default="pca", help="tsne needs evoplastic[analysis]")
    am.add_argument("--out", required=True, metavar="DIR", help="writes memory.png, memory.md, memory.json")
    am.set_defaults(func=_cmd_analyze_memory)
    ast = asub.add_parser("structure", help="NeuronML's frugality, plasticity (task overlap), sensitivity of a "
                                            "masked genome")
    ast.add_argument("genome", metavar="GENOME", help="genome .npz or run directory of a <id>+mask model")
    ast.add_argument("--which", choices=["best", "mean"], default="best", help="for a run directory")
    ast.add_argument("--model", default=None, help="model id (default: the one stored with the genome)")
    ast.add_argument("--hidden", type=_positive, default=None, help="hidden units (default: stored, else 64)")
    ast.add_argument("--tasks", default="maze9", metavar="SUITE_OR_FILE", help="fixed task set (default maze9)")
    ast.add_argument("--count", type=_positive, default=16, help="tasks (the first N; default 16)")
    ast.add_argument("--repeats", type=_positive, default=2, help="lifetimes per task (default 2)")
    ast.add_argument("--rollouts", type=_positive, default=None, help="default: the profile's")
    ast.add_argument("--profile", default="evoplastic", choices=["evoplastic", "reference-2022-08"],
                     help="evaluation profile (default evoplastic)")
    ast.add_argument("--seed", type=_nonneg, default=0, help="seed of the lifetimes' action sampling (default 0)")
    ast.add_argument("--threshold", type=float, default=0.05, help="mean |h| above which a task activates a unit")
    ast.add_argument("--out", required=True, metavar="DIR", help="writes structure.png, structure.md, structure.json")
    ast.set_defaults(func=_cmd_analyze_structure)

    sw = sub.add_parser("sweep", help="run (or resume) every point of a sweep file, then summarise")
    sw.add_argument("sweep", help="sweep YAML: base config, grid, parallel, test suites")
    sw.add_argument("--out", default=None, help="sweep directory (default: runs/<sweep name>)")
    sw.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override for every point")
    sw.add_argument("--address", default=None,
                    help="Ray cluster to join: auto or HOST:PORT (default: start a local instance)")
    sw.add_argument("--parallel", type=_positive, default=None, help="points side by side (default: sweep file)")
    sw.add_argument("--workers", type=_positive, default=None,
                    help="worker actors for the whole sweep, split evenly between the points running side by "
                         "side (default: one per CPU this process may use)")
    sw.add_argument("--tensorboard", action="store_true",
                    help="also log each point's metrics to POINT_DIR/tensorboard (needs evoplastic[tensorboard])")
    sw.set_defaults(func=_cmd_sweep)

    r = sub.add_parser("report", help="figures and tables of a run or sweep directory (needs evoplastic[plots])")
    r.add_argument("path", metavar="RUN_OR_SWEEP_DIR", help="a run directory (train --run-dir) or a sweep directory")
    r.add_argument("--out", metavar="DIR", default=None, help="default: RUN_OR_SWEEP_DIR/report")
    r.add_argument("--mazes", type=_positive, default=3, help="mazes in the trajectory figure (default 3)")
    r.add_argument("--suite", default=None,
                   help="draw the trajectories' mazes from this suite (default: new mazes of the training size)")
    r.add_argument("--seed", type=_nonneg, default=0,
                   help="seed of the trajectories' mazes and lifetimes (default 0)")
    r.set_defaults(func=_cmd_report)

    pl = sub.add_parser("play", help="watch one lifetime of a genome in a maze (text or GIF)",
                        description="Replay one lifetime (all its rollouts, memories kept between them) "
                                    "of a genome through the Gymnasium env's renderer.")
    pl.add_argument("genome", help="genome .npz, run directory, paper-genome, or reference .dat (needs --model)")
    pl.add_argument("--tasks", default=None, metavar="SUITE_OR_FILE",
                    help="task set (default: the run's validation suite; paper-maze9 for paper-genome; else maze9)")
    pl.add_argument("--task", type=_nonneg, default=0, help="index of the maze in the task set (default 0)")
    pl.add_argument("--render", choices=["ansi", "gif"], default="ansi",
                    help="ansi: text in the terminal (default); gif: an animation file (needs Pillow, "
                         "which evoplastic[plots] brings)")
    pl.add_argument("--out", default=None, help="GIF file (default: play-<genome>-<tasks>-<task>.gif)")
    pl.add_argument("--fps", type=float, default=10.0, help="frames (agent steps) per second (default 10)")
    pl.add_argument("--no-animate", action="store_true",
                    help="ansi: print each rollout's last frame instead of animating (the default off a terminal)")
    pl.add_argument("--profile", default=None, choices=["evoplastic", "reference-2022-08"],
                    help="lifetime conventions (default: the run's; reference-2022-08 for paper-genome)")
    pl.add_argument("--rollouts", type=_positive, default=None, help="rollouts in the lifetime (default: the profile's)")
    pl.add_argument("--seed", type=_nonneg, default=0, help="seed of the lifetime's action sampling (default 0)")
    pl.add_argument("--which", choices=["best", "mean"], default="best",
                    help="for a run directory: the best-validated (default) or the current mean genome")
    pl.add_argument("--model", default=None, help="model id (default: the one stored with the genome)")
    pl.add_argument("--hidden", type=_positive, default=None, help="hidden units (default: stored, else 64)")
    pl.set_defaults(func=_cmd_play)

    es = sub.add_parser("estimate", help="time and agent-steps a config will cost on this machine, from a "
                                         "short measurement")
    es.add_argument("config", help="experiment YAML (see experiments/ and experiments/paper/)")
    es.add_argument("--workers", type=_positive, default=None,
                    help="workers to extrapolate to (default: the config's, else the CPUs this process may use)")
    es.add_argument("--seconds", type=float, default=3.0, help="measuring time in seconds (default 3)")
    es.set_defaults(func=_cmd_estimate)

    st = sub.add_parser("status", help="where each run of a run or sweep directory is: generation, best "
                                       "validation, s/generation, ETA")
    st.add_argument("path", metavar="RUN_OR_SWEEP_DIR", help="a run directory (train --run-dir) or a sweep directory")
    st.add_argument("--json", metavar="OUT", default=None, help="write the rows as JSON ('-': stdout)")
    st.set_defaults(func=_cmd_status)

    bench = sub.add_parser("bench", help="benchmarks that print their figures")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    bl = bsub.add_parser("lifetime", help="agent-steps per second per core of the lifetime evaluator")
    bl.add_argument("--model", default="decprnn-postdn", help="model id (default decprnn-postdn)")
    bl.add_argument("--hidden", type=_positive, default=64, help="hidden units (default 64)")
    bl.add_argument("--size", type=int, default=15, help="maze side in cells (default 15)")
    bl.add_argument("--batch", type=_positive, default=256, help="lifetimes in lock step (default 256)")
    bl.add_argument("--seconds", type=float, default=6.0, help="CPU seconds per engine (default 6)")
    bl.add_argument("--engine", choices=["both", "fused", "lockstep"], default="both",
                    help="both (default): fused and lock-step side by side, alternating")
    bl.add_argument("--json", metavar="OUT", default=None, help="write the result as JSON ('-': stdout)")
    bl.set_defaults(func=_cmd_bench_lifetime)
    bg = bsub.add_parser("generation", help="wall time per generation: in-process vs Ray with 1..W workers")
    bg.add_argument("--workers", type=_positive, default=2, help="largest worker count (default 2)")
    bg.add_argument("--model", default="decprnn-postdn", help="model id (default decprnn-postdn)")
    bg.add_argument("--popsize", type=_positive, default=360, help="genomes per generation (default 360)")
    bg.add_argument("--tasks", type=_positive, default=8, help="training tasks per generation (default 8)")
    bg.add_argument("--repeats", type=_positive, default=4, help="lifetimes per task (default 4)")
    bg.add_argument("--size", type=int, default=15, help="maze side in cells (default 15)")
    bg.add_argument("--repeat", type=_positive, default=2, help="generations timed per setting (default 2)")
    bg.add_argument("--engine", choices=["auto", "fused", "lockstep"], default="auto",
                    help="lifetime engine (default auto: fused where it covers the model)")
    bg.add_argument("--json", metavar="OUT", default=None, help="write the result as JSON ('-': stdout)")
    bg.set_defaults(func=_cmd_bench_generation)
    return p


def _raise_stop(signum: int, frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


# Hints for file-system errors, by errno: what the user can do about it.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space and run the command again (a run continues with "
                  "`evoplastic resume`, its last checkpoint intact)",
    errno.EFBIG: "the file size limit was reached (ulimit -f); raise it and run the command again",
    errno.EDQUOT: "the disk quota is exceeded; free space and run the command again",
    errno.EROFS: "the file system is read-only; use a writable directory",
    errno.EACCES: "permission denied; check the permissions or use another directory",
    errno.EPERM: "operation not permitted; check the permissions or use another directory",
    errno.EISDIR: "a directory is where a file is expected; move it away or choose another path",
    errno.ENOTDIR: "a file is where a directory is expected; move it away or choose another path",
    errno.EEXIST: "something is already there; move it away or choose another path",
    errno.ENOENT: "no such file or directory",
}


def os_error_line(exc: OSError) -> str:
    """One line for a file-system error: the path, what happened, what to do."""
    what = exc.strerror or str(exc)
    where = f"{exc.filename}: " if exc.filename else ""
    hint = _OS_HINTS.get(exc.errno or -1)
    if exc.errno is None and exc.args:  # raised with a message of our own (FileNotFoundError("..."))
        return str(exc.args[0])
    return f"{where}{what}" + (f" ({hint})" if hint and hint != what.lower() else "")


def main(argv: Sequence[str] | None = None) -> int:
    # From the very first moment: SIGTERM and SIGINT stop the command with a true message, never
    # silently (training turns the same signals into a checkpoint of the last generation).
    old = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _main(argv)
    except (KeyboardInterrupt, Stop) as exc:
        print(f"evoplastic: {_signal_name(exc)}", file=sys.stderr)
        return 130
    finally:  # main([...]) called from Python (tests, notebooks) leaves the caller's handlers as they
        # were. The console script's command is over here and has said what it did; Python resets
        # signal handlers to the default late in its teardown, where a SIGINT or SIGTERM would kill
        # the process silently (exit -2/-15 after a finished run, seen in the crash trials), so the
        # two are held from here to the exit, which discards them: the exit code stays the command's.
        if argv is not None:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        else:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("bench", "estimate"):  # one BLAS thread: figures are per core (if numpy is not loaded yet)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"
    from evoplastic.errors import NoWorkersError

    logging.basicConfig(level=logging.WARNING, format="evoplastic: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"evoplastic: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"evoplastic: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except NoWorkersError as exc:
        print(f"evoplastic: error: {exc}", file=sys.stderr)
        return 3
    except Exception:
        traceback.print_exc()
        print(f"evoplastic: internal error: this is a bug in evoplastic {__version__}, not in your input; "
              "please report it with the command line and the traceback above", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
