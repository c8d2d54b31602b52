"""Architecture search on BreastMNIST: FLOP counts, Zen-score cost and usefulness, zen_nas and deepmad stages.

    python bench/nas.py [--candidates 1000] [--train 12] [--epochs 6] [--iterations 60] [--keep]

1. FLOPs/params: the analytic count of searchlab/nas/deepmad.py vs torch's flop counter on 200 random ZenNets
   from spaces/zen.yaml (target: identical).
2. Zen-score: ms per candidate within the budget at 28x28, batch 64, one CPU thread.
3. Does the proxy rank networks like training does? `--train` random ZenNets within the budget are scored and
   trained for `--epochs` epochs on the train split; Kendall tau between Zen-score and validation AUC, and
   between parameter count and validation AUC (the naive proxy), side by side.
4. zen_nas proxy stage: `--candidates` networks scored under a 40 MFLOPs / 300k-params budget (those over it
   are drawn on top, unscored), recorded in SQLite in one batch: seconds, candidates per second.
5. deepmad stage on the same space and budget: solve time, designs evaluated, the best design's entropy, FLOPs,
   params and rho beside the budget.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from _common import data_root, print_summary, print_table, scratch_dir, verdict, write_study  # noqa: E402
from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import create_or_load  # noqa: E402
from searchlab.models.zen import ZenNet  # noqa: E402
from searchlab.nas.deepmad import analyse, zen_convs  # noqa: E402
from searchlab.nas.deepmad_design import prepare_deepmad  # noqa: E402
from searchlab.nas.zen_nas import prepare_zen_nas  # noqa: E402
from searchlab.nas.zen_score import zen_score  # noqa: E402
from searchlab.space import sample_config  # noqa: E402
from searchlab.tasks.classify import ClassifyTask, parse_trial_config  # noqa: E402

BUDGET = {"max_flops": 4.0e7, "max_params": 3.0e5}


def study_file(tmp: Path, strategy: dict, trials: int = 1) -> Path:
    return write_study(tmp / f"{strategy['name']}.yaml", {
        "name": f"bench_{strategy['name']}", "task": "classify", "strategy": strategy, "pruner": {"kind": "none"},
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "space": {"include": "optim.yaml", "model": {"include": "zen.yaml"}, "train": {"batch_size": 64}},
        "budget": {"n_trials": trials, **BUDGET}, "run_dir": str(tmp / strategy["name"]), "seed": 0})


def random_zen_args(study, n: int, seed: int) -> list[dict]:
    """Architecture args of `n` random configs of the study's space (the zen.yaml distribution)."""
    sampler = optuna.samplers.RandomSampler(seed=seed)
    memory = optuna.create_study(sampler=sampler)
    out = []
    for _ in range(n):
        trial = memory.ask()
        out.append(parse_trial_config(sample_config(trial, study.space), None))
        memory.tell(trial, 0.0)
    return out


def flop_agreement(specs: list) -> tuple[int, int]:
    agree = 0
    for spec in specs:
        args = spec.model.architecture()[1]
        net = ZenNet(1, 2, **args).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(torch.zeros(1, 1, 28, 28))
        shape = analyse(zen_convs(args, 1, (28, 28)), 2)
        agree += shape.flops == counter.get_total_flops() and shape.params == sum(p.numel() for p in net.parameters())
    return agree, len(specs)


def zen_ms(specs: list) -> float:
    start = time.perf_counter()
    for i, spec in enumerate(specs):
        args = spec.model.architecture()[1]
        zen_score(lambda: ZenNet(1, 2, **args), 1, (28, 28), seed=i)
    return 1000 * (time.perf_counter() - start) / len(specs)


def proxy_vs_training(study, specs: list, epochs: int) -> dict:
    """Zen-score and params vs validation AUC after a short training, for networks within the budget."""
    from searchlab.engine.context import TrialContext

    task = ClassifyTask(study.config.task)
    memory = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    zen, params, auc = [], [], []
    for i, spec in enumerate(specs):
        config = spec.model_dump()
        config["train"]["epochs"] = epochs
        trial = memory.ask()
        ctx = TrialContext(trial, study, None, seed=i)
        metrics = _train(task, config, ctx)
        memory.tell(trial, metrics["auc"])
        args = spec.model.architecture()[1]
        zen.append(zen_score(lambda: ZenNet(1, 2, **args), 1, (28, 28), repeats=2, seed=i))
        params.append(metrics["params"])
        auc.append(metrics["auc"])
        print(f"  net {i}: params {params[-1]:.3g}, zen {zen[-1]:.1f}, val AUC {auc[-1]:.3f}", flush=True)
    return {"n": len(auc), "tau_zen": float(kendalltau(zen, auc).statistic),
            "tau_params": float(kendalltau(params, auc).statistic)}


def _train(task: ClassifyTask, config: dict, ctx) -> dict:
    """The classify task's own training, with the checkpoint upload skipped (no artifact store here)."""
    from searchlab.tasks import classify

    real = classify.store_checkpoint
    classify.store_checkpoint = lambda state, ctx: "not-stored"
    try:
        return task.run(config, ctx)
    finally:
        classify.store_checkpoint = real


def timed_stage(prepare, path: Path, args: dict) -> tuple[float, list]:
    study = load_study(path)
    main = create_or_load(study)
    start = time.perf_counter()
    trials = prepare(study, main, args)
    return time.perf_counter() - start, trials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--train", type=int, default=12, help="networks trained for the proxy check")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=60, help="deepmad's differential-evolution generations")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    random.seed(0)
    with scratch_dir(keep=args.keep) as tmp:
        zen_args = {"candidates": args.candidates, "top_k": 5, "batch_size": 64}
        zen_path = study_file(tmp, {"name": "zen_nas", "args": zen_args})
        study = load_study(zen_path)
        specs = random_zen_args(study, 200, seed=0)
        agree, total = flop_agreement(specs)
        within = [s for s in specs if analyse(zen_convs(s.model.architecture()[1], 1, (28, 28)), 2).flops
                  <= BUDGET["max_flops"]]
        ms = zen_ms(within[:20])
        ranking = proxy_vs_training(study, within[:args.train], args.epochs) if args.train else {}
        zen_s, proxy = timed_stage(prepare_zen_nas, zen_path, zen_args)
        dm_args = {"top_k": 3, "iterations": args.iterations}
        dm_path = study_file(tmp, {"name": "deepmad", "args": dm_args})
        dm_s, designs = timed_stage(prepare_deepmad, dm_path, dm_args)
    over = sum(t.state.name == "PRUNED" for t in proxy)
    best = max((t for t in designs if t.state.name == "COMPLETE"), key=lambda t: t.value)
    rows = [["FLOPs/params: analytic == torch's counter", f"{agree}/{total} nets", verdict(agree == total)],
            [f"Zen-score cost (28x28, batch 64, 1 thread; nets within the budget: {len(within)}/{total})",
             f"{ms:.0f} ms per candidate", ""]]
    if ranking:
        rows.append([f"Kendall tau vs val AUC after {args.epochs} epochs ({ranking['n']} nets)",
                     f"Zen-score {ranking['tau_zen']:+.2f} | params {ranking['tau_params']:+.2f}", ""])
    rows += [[f"zen_nas stage: {len(proxy)} candidates", f"{zen_s:.0f} s ({len(proxy) / zen_s:.1f}/s), "
              f"{over} over budget", ""],
             [f"deepmad stage: {len(designs)} designs evaluated", f"{dm_s:.0f} s", ""],
             ["deepmad best design", f"entropy {best.value:.0f}, FLOPs {best.user_attrs['flops']:.3g} "
              f"(<= {BUDGET['max_flops']:.0e}), params {best.user_attrs['params']:.3g}, "
              f"rho {best.user_attrs['rho']:.2f}", ""]]
    print("\nArchitecture search (spaces/zen.yaml, BreastMNIST 28x28)")
    print_table(["measure", "result", "check"], rows)
    print_summary({"bench": "nas", "flops_agree": agree, "flops_nets": total, "zen_ms": round(ms, 1), **ranking,
                   "zen_nas_seconds": round(zen_s, 1), "zen_nas_candidates": len(proxy), "over_budget": over,
                   "deepmad_seconds": round(dm_s, 1), "deepmad_designs": len(designs),
                   "deepmad_best": {k: best.user_attrs[k] for k in ("entropy", "flops", "params", "rho")}})
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())
