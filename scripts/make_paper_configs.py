"""Write experiments/paper/<model>-<size>.yaml: every model of the paper's Table 1 at the paper's
scale (SPEC 4: population 360, sigma 0.01, genome N(0, 0.05^2), 8 tasks x 4 repeats at the end of
the 2 -> 4 -> 8 curriculum, validation every 100 generations on 1,024 tasks), for 9x9 and 15x15.

    python scripts/make_paper_configs.py     # rewrites the files; they are committed
"""

from pathlib import Path

import yaml

from evoplastic import config as cfglib
from evoplastic.models import MODEL_IDS

OUT = Path(__file__).resolve().parents[1] / "experiments" / "paper"
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


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        for model in MODEL_IDS:
            data = config(model, size)
            cfglib.from_dict(data, model)  # every file must load
            head = (f"# {model}, {size}x{size}, the paper's scale (SPEC 4). Written by "
                    f"scripts/make_paper_configs.py.\n# evoplastic train experiments/paper/{model}-{size}.yaml "
                    f"--run-dir runs/{model}-{size} --address auto\n")
            (OUT / f"{model}-{size}.yaml").write_text(head + yaml.safe_dump(data, sort_keys=False,
                                                                             default_flow_style=None))
    for size in SIZES:  # Table 1 also lists Meta-RNN at hidden 32
        data = config("meta-rnn", size)
        data["model"]["hidden"], data["name"] = 32, f"paper-meta-rnn-h32-{size}x{size}"
        cfglib.from_dict(data, "meta-rnn-h32")
        (OUT / f"meta-rnn-h32-{size}.yaml").write_text(
            f"# meta-rnn (hidden 32), {size}x{size}, the paper's scale (SPEC 4). Written by "
            f"scripts/make_paper_configs.py.\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    print(f"wrote {2 * len(MODEL_IDS) + 2} configs to {OUT}")


if __name__ == "__main__":
    main()
