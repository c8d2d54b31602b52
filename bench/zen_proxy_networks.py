"""zen_nas's proxy search on the shipped study: how many distinct networks its candidates are, and its top-k.

    python bench/zen_proxy_networks.py [--candidates 1000] [--seeds 0 1 2]

The proxy evolution searches the study's whole space, lr and augmentation included, which the Zen-score does
not see: a child that changed only those is the network it came from. Per seed, on
studies/breastmnist_zen_nas.yaml (no training, no data read): the draws, the candidates scored (each a network
not scored before), the repeats (children that were a scored network: not scored again, PRUNED, out of the
population), the distinct networks among the scored ones, the distinct networks among the top_k queued to
train, and the seconds. Target: every scored candidate a distinct network, and top_k distinct networks queued.
(Before repeats were recognised: 1,000 candidates were 258 networks, and the top 5 queued one network 5 times.)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from _common import print_summary, print_table, verdict  # noqa: E402
from searchlab.config.load import load_study  # noqa: E402
from searchlab.nas.stage import enqueue_top_k  # noqa: E402
from searchlab.nas.zen_nas import ZenNASSettings, _search  # noqa: E402
from searchlab.tasks import get_task  # noqa: E402

STUDY = ROOT / "studies" / "breastmnist_zen_nas.yaml"
TOP_K = 5


def one_search(candidates: int, seed: int) -> dict[str, float]:
    study = load_study(STUDY, {"seed": seed})
    start = time.time()
    trials = _search(study, get_task(study.config.task), ZenNASSettings(candidates=candidates, top_k=TOP_K), None)
    seconds = time.time() - start
    main = optuna.create_study(direction="maximize")
    enqueue_top_k(main, trials, TOP_K, "zen_score")
    queued = {trials[t.user_attrs["proxy_trial"]].user_attrs["architecture"] for t in main.trials}
    scored = [t for t in trials if t.state == TrialState.COMPLETE]
    return {"seed": seed, "draws": len(trials), "scored": len(scored),
            "repeats": sum("same_network_as" in t.user_attrs for t in trials),
            "networks": len({t.user_attrs["architecture"] for t in scored}), "top_k_networks": len(queued),
            "seconds": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [one_search(args.candidates, seed) for seed in args.seeds]
    columns = list(rows[0])
    print_table(columns, [[row[c] for c in columns] for row in rows])
    ok = all(r["networks"] == r["scored"] and r["top_k_networks"] == TOP_K for r in rows)
    per_candidate = sum(r["networks"] for r in rows) / sum(r["scored"] for r in rows)
    print(f"distinct networks per scored candidate: {per_candidate:.3f}; top-{TOP_K} distinct networks: "
          f"{[r['top_k_networks'] for r in rows]}; {verdict(ok)}")
    print_summary({"bench": "zen_proxy_networks", "rows": rows, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
