"""Write experiments/paper/<model>-<size>.yaml: every model of the paper's Table 1 at the paper's
scale (method §4: population 360, sigma 0.01, genome N(0, 0.05^2), 8 tasks x 4 repeats at the end of
the 2 -> 4 -> 8 curriculum, validation every 100 generations on 1,024 tasks), for 9x9 and 15x15.

    python scripts/make_paper_configs.py             # rewrites the files; they are committed
    python scripts/make_paper_configs.py --estimate  # and measures each one's cost on this machine
                                                     # (evoplastic estimate) for its header
"""

import argparse
import time
from pathlib import Path

import yaml

from evoplastic import config as cfglib
from evoplastic.models import MODEL_IDS

OUT = Path(__file__).resolve().parents[1] / "experiments" / "paper"
PAPER_MODELS = [m for m in MODEL_IDS if m not in ("nm-rnn", "lr-rnn")]  # those two are beyond the paper
SIZES = {9: (0.30, "maze9-val", 15000), 15: (0.35, "maze15-val", 30000)}


def config(model: str, size: int) -> dict:
    crowd, val, generations = SIZES[size]
    return {
        "name": f"paper-{model}-{size}x{size}", "seed": 0, "generations": generations,
        "model": {"id": model, "hidden": 64},
        "lifetime": {"profile": "evoplastic"},
        "tasks": {"size": size, "crowd_ratio": crowd, "repeats": 4, "schedule": [[0, 2], [4000, 4], [8000, 8]]},
        "strategy": {"name": "sepcma", "popsize": 360, "sigma0": 0.01, "init_std": 0.05},
        "validation": {"suite": val, "count": 1024, "repeats": 1, "interval": 100},
        "checkpoint": {"interval": 100, "keep": 3},
        "workers": {"backend": "ray"},
    }


def _estimate_line(path: Path) -> str:
    """A header line with ``evoplastic estimate``'s figures for the config file ``path``."""
    from evoplastic.estimate import estimate
    from evoplastic.progress import format_duration

    e = estimate(str(path), seconds=3.0)
    return (f"# Cost on a {e.workers}-CPU machine (evoplastic estimate, {time.strftime('%Y-%m-%d')}): "
            f"{e.gen_s_last:.0f} s per generation at 8 tasks, about {format_duration(e.total_s)} in all "
            f"with {e.workers} workers (an upper bound).\n")


def _write(path: Path, head: str, data: dict, measure: bool) -> None:
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    path.write_text(head + body)
    if measure:
        path.write_text(head + _estimate_line(path) + body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--estimate", action="store_true", help="measure each config's cost for its header")
    measure = ap.parse_args().estimate
    OUT.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        for model in PAPER_MODELS:
            data = config(model, size)
            cfglib.from_dict(data, model)  # every file must load
            head = (f"# {model}, {size}x{size}, the paper's scale (method §4). Written by "
                    f"scripts/make_paper_configs.py.\n# evoplastic train experiments/paper/{model}-{size}.yaml "
                    f"--run-dir runs/{model}-{size} --address auto\n")
            _write(OUT / f"{model}-{size}.yaml", head, data, measure)
    for size in SIZES:  # Table 1 also lists Meta-RNN at hidden 32
        data = config("meta-rnn", size)
        data["model"]["hidden"], data["name"] = 32, f"paper-meta-rnn-h32-{size}x{size}"
        cfglib.from_dict(data, "meta-rnn-h32")
        head = (f"# meta-rnn (hidden 32), {size}x{size}, the paper's scale (method §4). Written by "
                f"scripts/make_paper_configs.py.\n")
        _write(OUT / f"meta-rnn-h32-{size}.yaml", head, data, measure)
    print(f"wrote {2 * len(PAPER_MODELS) + 2} configs to {OUT}")


if __name__ == "__main__":
    main()
