"""Ensemble members by rank (`export.select: top`) vs by greedy forward selection (`select: greedy`), judged
on held-out predictions that the selection did not see.

    python bench/ensemble_selection.py RUN_DIR [RUN_DIR ...] [--top-k 3 5] [--tta flip] [--splits 300]

RUN_DIRs are finished runs with at least K completed trials (e.g. the searchlab-seed* folders that
bench/breastmnist_30min.py leaves). For each run and K, the K best trials' held-out predictions are made once
as the export makes them (out of fold over train+val for bagged trials, else the validation split, with the
TTA); then, over --splits random halvings of those images, greedy selection chooses on one half and both
ensembles are scored on the other half by the study's objective. Prints the mean of each, how often greedy
is better or worse, the ratio, and the members greedy keeps on all images. The test split is never read.
A run and K that cannot be compared (e.g. fewer than K completed trials) is skipped with its reason, counted
in the summary, and makes the exit code 1: the comparison asked for is incomplete.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import mean

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table  # noqa: E402


def held_out(run_dir: Path, top_k: int, tta: str):
    """(run, candidates best first, labels, per-candidate held-out probabilities, split name)."""
    from searchlab.engine.rundir import open_run
    from searchlab.export.ensemble import pick_top_k
    from searchlab.export.exporter import assemble, trial_checkpoint
    from searchlab.export.selection import held_out_per_trial

    run = open_run(run_dir)
    candidates = pick_top_k(run.study, top_k)
    net, config = assemble(run, candidates, {t.number: trial_checkpoint(run, t) for t in candidates}, tta)
    labels, per_trial, split = held_out_per_trial(run, net, config, candidates)
    return run, candidates, config, labels, per_trial, split


def compare(run_dir: Path, top_k: int, tta: str, splits: int) -> dict:
    from searchlab.export.selection import forward_select, signed_objective

    run, candidates, config, labels, per_trial, split = held_out(run_dir, top_k, tta)

    def scorer(idx):   # higher is better; times sign, the objective itself
        return signed_objective(run, labels[idx], config, candidates[0])[2]

    metric, sign, _ = signed_objective(run, labels, config, candidates[0])

    rng = np.random.default_rng(0)
    greedy, top, sizes = [], [], []
    for _ in range(splits):
        order = rng.permutation(len(labels))
        choose_on, score_on = order[:len(labels) // 2], order[len(labels) // 2:]
        chosen, _ = forward_select([p[choose_on] for p in per_trial], scorer(choose_on))
        held = scorer(score_on)
        greedy.append(sign * held(np.mean([per_trial[i][score_on] for i in chosen], axis=0)))
        top.append(sign * held(np.mean([p[score_on] for p in per_trial], axis=0)))
        sizes.append(len(chosen))
    kept, _ = forward_select(per_trial, scorer(np.arange(len(labels))))
    wins = sum(sign * (g - t) > 0 for g, t in zip(greedy, top)) / splits
    losses = sum(sign * (g - t) < 0 for g, t in zip(greedy, top)) / splits
    return {"run": run_dir.name, "k": top_k, "split": split, "n": len(labels), "metric": metric,
            "greedy": mean(greedy), "top": mean(top), "better": wins, "worse": losses, "size": mean(sizes),
            "candidates": [t.number for t in candidates], "kept": [candidates[i].number for i in kept]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--top-k", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--tta", default="flip", choices=("none", "flip", "dihedral"))
    parser.add_argument("--splits", type=int, default=300, help="random halvings of the held-out images")
    args = parser.parse_args()
    results, skipped = [], []
    for run_dir in args.runs:
        for k in args.top_k:
            try:
                results.append(compare(run_dir, k, args.tta, args.splits))
            except Exception as exc:   # e.g. fewer than K completed trials: say so, go on with the others
                print(f"skipped {run_dir} top-{k}: {exc}", file=sys.stderr)
                skipped.append({"run": str(run_dir), "k": k, "reason": str(exc)})
    rows = [[r["run"], r["k"], f"{r['split']} ({r['n']})", f"{r['greedy']:.4f}", f"{r['top']:.4f}",
             f"{r['better']:.2f} / {r['worse']:.2f}", f"{r['size']:.2f}", f"{r['candidates']} -> {r['kept']}"]
            for r in results]
    print(f"greedy selection vs all top-k: chosen on half of the held-out images, scored by the objective on the "
          f"other half ({args.splits} halvings; TTA {args.tta})")
    print_table(["run", "K", "held out (n)", "greedy", "top-k", "greedy better / worse", "greedy size",
                 "candidates -> kept on all"], rows)
    if skipped:
        print(f"skipped {len(skipped)} of {len(skipped) + len(results)} run x K comparisons (reasons on stderr)")
    summary = {"bench": "ensemble_selection", "tta": args.tta, "splits": args.splits, "compared": len(results),
               "skipped": len(skipped), "skipped_runs": skipped}
    for k in args.top_k:
        of_k = [r for r in results if r["k"] == k]
        if of_k:
            g, t = mean(r["greedy"] for r in of_k), mean(r["top"] for r in of_k)
            print(f"top-{k} over {len(of_k)} runs: mean {of_k[0]['metric']} greedy {g:.4f} vs all {t:.4f} "
                  f"(ratio {g / t:.4f})")
            summary[f"top{k}"] = {"runs": len(of_k), "greedy": round(g, 4), "top": round(t, 4)}
    print_summary(summary)
    return 0 if results and not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
