"""Greedy choice of ensemble members (`export.select: greedy`, `searchlab export --top-k K --select greedy`).

Taking the K best trials by rank puts every one of them into the average, however far behind the best it is,
and a weak member can pull the ensemble down. Forward selection (Caruana et al., 2004, the ensemble step of
auto-sklearn and AutoGluon; here without replacement, so members keep equal weights and the export format is
unchanged): start from the best trial, add the candidate whose addition most improves the ensemble's objective
on held-out predictions, and stop when no addition improves it. Held out means out of fold over train+val for
bagged trials and the validation split otherwise: the predictions the export's threshold is chosen on. The
test split is never read here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from optuna.trial import FrozenTrial

from searchlab.engine.rundir import OpenRun
from searchlab.errors import ExportError
from searchlab.export.ensemble import load_split, threshold_rule
from searchlab.export.out_of_fold import bagged, out_of_fold_per_trial
from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.metrics import compute_metrics
from searchlab.models import standalone

SELECT_MODES = ("top", "greedy")


def select_members(run: OpenRun, net: torch.nn.Module, config: dict[str, Any],
                   candidates: list[FrozenTrial]) -> tuple[list[FrozenTrial], dict[str, Any]]:
    """The candidates (best first, as `net` and `config` hold them) forward selection keeps, and a record of
    the choice for config.json."""
    labels, per_trial, split = held_out_per_trial(run, net, config, candidates)
    metric, sign, higher_better = signed_objective(run, labels, config, candidates[0])
    chosen, scores = forward_select(per_trial, higher_better)
    return [candidates[i] for i in chosen], {
        "rule": "greedy", "metric": metric, "split": split, "held_out_size": int(len(labels)),
        "candidates": [t.number for t in candidates],
        "steps": [{"added": candidates[i].number, metric: sign * s} for i, s in zip(chosen, scores)]}


def weaker_than_a_member(run: OpenRun, net: torch.nn.Module, config: dict[str, Any],
                         trials: list[FrozenTrial]) -> dict[str, Any] | None:
    """When the plain top-k average scores below one of its own members on the held-out predictions (a weak
    member pulls it down), a record saying so for config.json; None when it does not, or when the objective
    cannot be scored from predictions (a cost) or is undefined there. The ensemble is scored at the threshold
    its export chooses (the best trial's rule), each member at the one its own rule chooses: what `--trial N`
    with the same --tta gives, the fix the warning names (by the best trial's rule, an f1 member was cited at
    0.1000 where --trial 1 gives 0.1792)."""
    labels, per_trial, split = held_out_per_trial(run, net, config, trials)
    try:
        metric, sign, higher_better = signed_objective(run, labels, config, trials[0])
        ensemble = higher_better(np.mean(per_trial, axis=0))
        members = [signed_objective(run, labels, config, trial)[2](probs) for trial, probs in zip(trials, per_trial)]
    except ExportError:
        return None
    best = int(np.argmax(members))
    if not members[best] > ensemble:
        return None
    return {"metric": metric, "split": split, "ensemble": sign * ensemble, "member": trials[best].number,
            "member_value": sign * members[best]}


def weaker_with_tta(run: OpenRun, net: torch.nn.Module, config: dict[str, Any],
                    trials: list[FrozenTrial]) -> dict[str, Any] | None:
    """When the export's test-time augmentation scores below the same model without it on the validation
    split (views the trials never trained on, e.g. rotations of images that are never rotated, add errors), a
    record saying so for config.json. None when it does not, for bags (their validation split is training
    data), and when the objective is a cost or undefined there."""
    if config.get("tta", "none") == "none" or bagged(trials):
        return None
    val = load_split(run, "val").splits["val"]
    try:
        metric, sign, higher_better = signed_objective(run, val.labels.numpy(), config, trials[0])
        scored = {tta: higher_better(standalone.predict_proba(net, {**config, "tta": tta}, val.images).numpy())
                  for tta in (config["tta"], "none")}
    except ExportError:
        return None
    if not scored["none"] > scored[config["tta"]]:
        return None
    return {"metric": metric, "split": "val", "tta": config["tta"], "with_tta": sign * scored[config["tta"]],
            "without_tta": sign * scored["none"]}


def forward_select(per_member: list[np.ndarray], score: Callable[[np.ndarray], float]) -> tuple[list[int], list[float]]:
    """Indices kept (0, the best, first) and the score after each addition; higher scores are better. A tie
    adds nothing: a member that does not help is cost without gain."""
    chosen, scores = [0], [score(per_member[0])]
    while len(chosen) < len(per_member):
        rest = [i for i in range(len(per_member)) if i not in chosen]
        tried = {i: score(np.mean([per_member[j] for j in chosen + [i]], axis=0)) for i in rest}
        best = max(rest, key=lambda i: (tried[i], -i))   # equal scores: the better-ranked candidate
        if not tried[best] > scores[-1]:
            break
        chosen.append(best)
        scores.append(tried[best])
    return chosen, scores


def held_out_per_trial(run: OpenRun, net: torch.nn.Module, config: dict[str, Any],
                       trials: list[FrozenTrial]) -> tuple[np.ndarray, list[np.ndarray], str]:
    """(labels, one probability array per trial, which split): out of fold for bags, else validation."""
    members = list(net.members)
    if bagged(trials):
        labels, per_trial = out_of_fold_per_trial(run, members, config, trials)
        return labels, per_trial, "out-of-fold train+val"
    val = load_split(run, "val").splits["val"]
    per_trial = [standalone.predict_proba(member, {"preprocessing": prep, "task": config["task"],
                                                   "tta": config.get("tta", "none")}, val.images).numpy()
                 for member, prep in zip(members, config["preprocessing"])]
    return val.labels.numpy(), per_trial, "val"


def signed_objective(run: OpenRun, labels: np.ndarray, config: dict[str, Any],
                     rule_of: FrozenTrial) -> tuple[str, float, Callable[[np.ndarray], float]]:
    """(the study's first objective, +1 or -1, a scorer of probabilities where higher is better whichever the
    objective's direction, at thresholds chosen by `rule_of`'s rule); the signed score times the sign is the
    objective itself."""
    metric, direction = run.record["objectives"][0]
    sign = 1.0 if direction == "maximize" else -1.0
    score = objective_scorer(labels, config, metric, rule_of)
    return metric, sign, lambda probs: sign * score(probs)


def objective_scorer(labels: np.ndarray, config: dict[str, Any], metric: str,
                     rule_of: FrozenTrial) -> Callable[[np.ndarray], float]:
    """The study's objective of held-out probabilities, at the threshold `rule_of`'s imbalance.threshold rule
    chooses for them: for an ensemble the best trial (its export's rule), for a lone member the member itself,
    so threshold-bound objectives are judged as they will be exported."""
    kind, n_classes = config["task"], len(config["class_names"])
    rule = ImbalanceSpec(threshold=threshold_rule(rule_of))

    def score(probs: np.ndarray) -> float:
        metrics = compute_metrics(labels, probs, kind, n_classes, threshold=choose_threshold(rule, kind, labels, probs))
        if metric not in metrics:
            raise ExportError(f"--select greedy scores ensembles by the study's objective '{metric}', which is not "
                              f"computed from predictions (known: {', '.join(sorted(metrics))}). Fix: --select top")
        value = metrics[metric]
        if not np.isfinite(value):
            raise ExportError(f"the objective '{metric}' is undefined on the held-out predictions (e.g. one class "
                              "only), so members cannot be compared. Fix: --select top")
        return float(value)

    return score
