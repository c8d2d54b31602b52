"""GAN trials on BreastMNIST (28x28): wall time and MedFID per family at the generate task's default budget.

    python bench/gan.py [--families dcgan wgan_gp stylegan2] [--iterations N] [--synthetic 250] [--seeds 3] [--seed 0]

1. One trial per family, one after the other with both cores (workers 1, 2 torch threads), each with the
   settings a study gets when its space leaves them at their defaults (searchlab/tasks/generate_config.py:
   latent 64, widths 32, batch 32, 1,000 generator steps, EMA 0.999, 4 MedFID evaluations; WGAN-GP 5 critic
   steps, StyleGAN2 lazy R1), class-conditional (so step 2 can ask for minority-class images). Reported: the
   trial's wall time (training and its MedFID evaluations), MedFID, KID, precision, recall, coverage, copying
   and label agreement (beside their real-image floors: held-out images), beside the
   real-vs-real floor (validation vs train images). The MedFID feature network is trained once first (cached;
   its time is reported on its own). Targets (issue 5): DCGAN and WGAN-GP <= 180 s per trial, StyleGAN2 <= 600 s.
2. Downstream: the family with the lowest MedFID is exported, and the same classifier (plain CNN, 20 epochs,
   `--seeds` training seeds averaged by train.repeats) is trained without and with `--synthetic` generated
   images of the minority class (augment.synthetic); validation AUC (mean over seeds) and the test AUC/ACC of
   each exported classifier (test split read once per classifier, at export; nothing selects on it). Skipped,
   and said so, with `--synthetic 0` or when no family's trial completed (no generator to export).
Exit 0 only when every family's trial completed within its target time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402

from _common import data_root, print_summary, print_table, scratch_dir, verdict, with_ci, write_study  # noqa: E402
from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402

TARGET_SECONDS = {"dcgan": 180, "wgan_gp": 180, "stylegan2": 600}


def study_file(tmp: Path, family: str, iterations: int | None, seed: int = 0) -> Path:
    """One family's study in its own run folder, all sharing the MedFID feature network trained first (`seed`:
    the study's, so the trial's training seed; the feature network is trained at seed 0 whatever it is)."""
    train = {"iterations": iterations} if iterations else {}
    return write_study(tmp / f"{family}.yaml", {
        "name": f"gan_{family}", "task": {"kind": "generate", "features": str(tmp / "features")},
        "objective": "medfid", "strategy": "random", "pruner": {"kind": "none"}, "seed": seed,
        "budget": {"n_trials": 1},
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "space": {"gan": {"family": family, "conditional": True}, "train": train},
        "executor": {"kind": "local", "workers": 1, "threads_per_worker": 2}, "run_dir": str(tmp / family)})


def train_features(tmp: Path) -> float:
    """The purpose-trained MedFID feature network, once (what a study without task.features trains)."""
    from searchlab.data import load_dataset
    from searchlab.gan.features import CACHE_DIR, feature_network

    start = time.perf_counter()
    study = load_study(study_file(tmp, "dcgan", None))
    data = load_dataset(study.config.data, splits=("train", "val"), seed=0)
    feature_network(None, tmp, tmp, data, seed=0)
    (tmp / CACHE_DIR).rename(tmp / "features")
    return time.perf_counter() - start


def family_trial(tmp: Path, family: str, iterations: int | None, seed: int = 0) -> tuple[dict, list]:
    study = load_study(study_file(tmp, family, iterations, seed))
    started = time.perf_counter()
    run_study(study, progress=False)
    wall = time.perf_counter() - started
    trial = optuna.load_study(study_name=f"gan_{family}", storage=f"sqlite:///{tmp / family / 'study.db'}").trials[0]
    if trial.state.name != "COMPLETE":
        error = trial.user_attrs.get("error", trial.state.name)
        return {"family": family, "seconds": round(wall), "error": error}, [family, f"{wall:.0f} s", "-", "-", "-",
                                                                            "-", "-", "-", "-", "-", error[:60]]
    m = trial.user_attrs["metrics"]
    in_time = wall <= TARGET_SECONDS[family]
    row = [family, f"{wall:.0f} s (<= {TARGET_SECONDS[family]})", f"{trial.value:.2f}", f"{m['medfid_floor']:.2f}",
           f"{m['kid']:.3f}", f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['coverage']:.2f}",
           f"{m['copying']:.3f} ({m['copying_floor']:.3f})", f"{m['label_agreement']:.2f} ({m['label_agreement_floor']:.2f})"
           if "label_agreement" in m else "-", verdict(in_time)]
    return {"family": family, "seconds": round(wall), "in_time": in_time, "medfid": trial.value, **m}, row


def classifier_study(tmp: Path, name: str, synthetic: int, seeds: int) -> Path:
    augment = {"synthetic": str(tmp / "generator"), "synthetic_per_class": synthetic} if synthetic else {}
    return write_study(tmp / f"{name}.yaml", {
        "name": name, "task": "classify", "strategy": "random", "pruner": {"kind": "none"}, "seed": 0,
        "budget": {"n_trials": 1, "epochs": 20},
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "space": {"model": {"kind": "cnn", "depth": 3, "width": 16}, "augment": augment,
                  "train": {"repeats": seeds, "early_stopping": None}},
        "executor": {"kind": "local", "workers": 1, "threads_per_worker": 2}, "run_dir": str(tmp / name)})


def downstream(tmp: Path, synthetic: int, seeds: int) -> list[list]:
    from searchlab.export.exporter import export_run

    rows = []
    for name, count in (("without", 0), ("with", synthetic)):
        study = load_study(classifier_study(tmp, f"cls_{name}", count, seeds))
        run_study(study, progress=False)
        trial = optuna.load_study(study_name=f"cls_{name}", storage=f"sqlite:///{tmp / f'cls_{name}' / 'study.db'}").trials[0]
        config = export_run(tmp / f"cls_{name}", tmp / f"cls_{name}" / "best")
        test, ci = config["test_metrics"], config["test_metrics_ci95"]
        rows.append([f"classifier {name} synthetic ({count} minority images)", f"{trial.value:.3f}",
                     with_ci(test["auc"], ci["auc"]), with_ci(test["accuracy"], ci["accuracy"])])
    return rows


def downstream_skipped(synthetic: int, results: list[dict], done: list[dict]) -> str | None:
    """Why step 2 cannot run, or None when it can: it needs a completed trial's generator to export."""
    if not synthetic:
        return "--synthetic 0"
    if not done:
        return f"no GAN trial completed (failed: {', '.join(r['family'] for r in results)}; see the table)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(TARGET_SECONDS))
    parser.add_argument("--iterations", type=int, default=None, help="override the default 1,000 (smoke runs)")
    parser.add_argument("--synthetic", type=int, default=250, help="minority-class images added (0: skip step 2)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the GAN studies' seed (their trials' training seed)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with scratch_dir() as tmp:
        extractor_s = train_features(tmp)
        trials = [family_trial(tmp, family, args.iterations, args.seed) for family in args.families]
        results, rows = [r for r, _ in trials], [row for _, row in trials]
        done = [r for r in results if "medfid" in r]
        down, best = [], None
        skipped = downstream_skipped(args.synthetic, results, done)
        if not skipped:
            from searchlab.export.exporter import export_run

            best = min(done, key=lambda r: r["medfid"])["family"]
            export_run(tmp / best, tmp / "generator")
            down = downstream(tmp, args.synthetic, args.seeds)
    print(f"\nGAN trials on BreastMNIST 28x28, class-conditional, 2 cores; MedFID feature network trained and "
          f"cached in {extractor_s:.0f} s")
    print_table(["family", "trial wall time", "MedFID", "real-vs-real floor", "KID", "precision", "recall",
                 "coverage", "copying (floor)", "label agreement (floor)", "time"], rows)
    ok = all(r.get("in_time", False) for r in results)   # a failed trial has no "in_time": it did not pass
    print(f"every family's trial completed within its target time: {verdict(ok)}")
    if skipped:
        print(f"\nDownstream (step 2) skipped: {skipped}")
    else:
        print(f"\nDownstream: generator of the lowest-MedFID family ({best}); plain CNN, 20 epochs, mean of "
              f"{args.seeds} seeds")
        print_table(["classifier", "val AUC", "test AUC [95% CI]", "test ACC [95% CI]"], down)
    print_summary({"bench": "gan", "extractor_seconds": round(extractor_s, 1), "results": results,
                   "downstream": down, "downstream_skipped": skipped, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
