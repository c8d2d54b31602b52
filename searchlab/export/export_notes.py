"""What an export's numbers do not show at a glance, said when it is written (`searchlab export` and the
export after a run): its test headline with intervals, and warnings of undefined metrics, test images the search
saw, one-class or always-on labels and ensembles or test-time augmentation scoring below a plain member."""
from __future__ import annotations

import math
import sys
from typing import Any


def test_headline(config: dict[str, Any]) -> str:
    """An export's test AUC and accuracy with their 95% intervals, or why it has none."""
    test, ci = config["test_metrics"], config.get("test_metrics_ci95") or {}
    if test is None:
        return config["test_note"]
    multilabel = config.get("task") == "multilabel"   # accuracy is exact match there: hamming loss beside it
    headline = ("auc", "accuracy", "hamming_loss") if multilabel else ("auc", "accuracy")
    chosen_by = [m for m in config.get("objectives", []) if m not in headline]
    names = [k for k in (*headline, *chosen_by) if k in test and test[k] is not None]
    methods = config.get("test_metrics_ci95_method") or {}
    # undefined (a class or label absent from the test split): said, not "nan [nan, nan]"; warned of below. A
    # metric resting on a class of too few test patients has no interval: its method says why, in its place.
    withheld = {k for k in names if str(methods.get(k, "")).startswith("no CI")}
    said = {k: "exact-match accuracy" if multilabel and k == "accuracy" else k for k in names}
    shown = ", ".join(f"{said[k]} undefined" if not math.isfinite(test[k]) else
                      f"{said[k]} {test[k]:.3f} [{methods[k]}]" if k in withheld else
                      f"{said[k]} {test[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in ci else
                      f"{said[k]} {test[k]:.3f}" for k in names)
    # an undefined metric has no interval, so no method of one (an old export still names the bootstrap's)
    how = "; ".join(f"{k}: {methods[k]}" for k in names
                    if k in ci and k in methods and k not in withheld and math.isfinite(test[k]))
    return f"test {shown} (n={config['test_size']}" + (f"; 95% intervals, {how})" if how else ")")


def say_search_unfinished(config: dict[str, Any]) -> None:
    """An export made while trials of its study ran (a classifier's or a generator's): the best so far."""
    if at := config.get("search_at_export"):
        of = f" of budget.n_trials={at['n_trials']}" if at.get("n_trials") else ""
        print(f"note: {at['trials_running']} trial(s) of the study were running: this export is of the best of the "
              f"{at['trials_finished']} finished{of} so far, not of a finished search (recorded in config.json "
              "search_at_export); export again when the search is done", file=sys.stderr)


def warn_about_export(config: dict[str, Any]) -> None:
    """What an export's numbers do not show at a glance: undefined test metrics, a one-label model."""
    from searchlab.export.scorings import scorings_note

    say_search_unfinished(config)

    test = config.get("test_metrics") or {}
    undefined = [k for k in ("auc", "average_precision", "sensitivity", "specificity")
                 if k in test and not math.isfinite(test[k])]
    if undefined:
        lacking = [name for j, name in enumerate(config["class_names"])
                   if not math.isfinite(test.get(f"auc_class_{j}", math.inf))]
        which = f" ({', '.join(map(repr, lacking))})" if lacking else ""
        print(f"warning: {', '.join(undefined)} undefined on this test split ({config['test_size']} images): a "
              f"class{which} is missing from it (multi-label: a label never or always on); recorded as null in "
              "config.json. Fix: a test split that has every class", file=sys.stderr)
    if config.get("data_replaced_since_search"):
        print(f"note: images were replaced in place since the search ({config['data_replaced_since_search']}); "
              "the splits did not move, and the test metrics are of the images as they are now", file=sys.stderr)
    seen = config.get("test_images_seen_in_search")
    if seen:
        print(f"note: {seen['images']} of the {config['test_size']} test images are pixel-for-pixel copies of "
              f"training or validation images ({seen['labelled_otherwise']} of them labelled otherwise there); "
              "their rows are in config.json under test_images_seen_in_search", file=sys.stderr)
    for source in config.get("test_images_seen_by_weights") or []:
        if source.get("used_as") == "space.augment.synthetic":   # a generator these trials took images from
            how, fix = "the GAN study of the generator whose images these trials trained on", "use a generator " \
                "trained on other data"
        else:
            how, fix = "the run of the weights these trials started from", "start from weights of other data"
        if source.get("not_recorded"):   # fine-tuned on images nobody listed: any count is a lower bound
            print(f"warning: {how} ({source['weights']}) learned from images searchlab was not told of: "
                  f"{_not_recorded(source['not_recorded'])}; so the {source.get('test_images') or 0} test "
                  "images counted as seen by them is a lower bound, and the test metrics may be optimistic. Fix: "
                  f"make sure those images are not among this study's test images, or {fix}", file=sys.stderr)
            if not source.get("test_images"):
                continue
        if source.get("test_images") is None:
            print(f"warning: could not check whether {how} ({source['weights']}) trained or selected on these test "
                  f"images: {source.get('unchecked')}, so what is there now is not what the trials learned from. "
                  "Fix: put that export back at its path and export again", file=sys.stderr)
            continue
        if ancestors := source.get("seen_by_ancestors"):   # learned by a run before the weights' own
            _warn_of_ancestors(config, source, how, ancestors, fix)
            continue
        print(f"warning: {source['test_images']} of the {config['test_size']} test images were trained or selected "
              f"on by {how} ({source['weights']}): the test metrics are optimistic. Fix: split as that study did, "
              f"or where the files are copies in another data set, keep them out of the test split, or {fix}",
              file=sys.stderr)
    if config.get("test_split_scored") and (note := scorings_note(config["test_split_scored"])):
        print(note, file=sys.stderr)
    _warn_if_one_class(config)
    _warn_if_a_label_is_always_on(config)
    _warn_if_few_test_images_of_a_class(config)
    _warn_of_withheld_intervals(config)
    _warn_if_over_budget_now(config)
    front = config.get("dominated_by_front")
    if front:
        warn_dominated(config["trial"]["number"], front)
    if config.get("tta_below_plain"):
        _warn_of_tta_below_plain(config)
    below = config.get("ensemble_below_member")
    if below:
        tta = "" if config.get("tta", "none") == "none" else f" --tta {config['tta']}"
        # the member is scored as `--trial N` exports it (its own threshold rule), and with the same views: the
        # fix names them, as export's --tta defaults to none and would give another number
        print(f"warning: on the {below['split']} predictions this ensemble's {below['metric']} "
              f"({below['ensemble']:.4f}) is worse than that of its member trial {below['member']} "
              f"({below['member_value']:.4f}{', both with' + tta if tta else ''}): a weaker member pulls the average "
              f"down. Fix: --select greedy (keeps only members that help), a smaller --top-k, or "
              f"--trial {below['member']}{tta}", file=sys.stderr)


# what each --tta mode adds (standalone.tta_views): a left-right flip; dihedral also 90-degree turns and an up-down flip
TTA_VIEWS = {"flip": "left-right flips", "dihedral": "90-degree turns and flips"}


def _warn_of_tta_below_plain(config: dict[str, Any]) -> None:
    """Test-time augmentation scoring below the plain model on validation: views the trials never trained on add
    errors; but when every trial trained on them the cause is not that, and a drop on a few images may be noise
    (flip_shift trials, 0.836 -> 0.820 on 25 images, were told they "did not train on those views")."""
    worse = config["tta_below_plain"]
    # recorded only when TTA scores worse, so the numbers give the objective's direction: a rise is of a cost
    raised = worse["with_tta"] > worse["without_tta"]
    verb = f"raises {worse['metric']} (lower is better)" if raised else f"lowers {worse['metric']}"
    change = (f"--tta {worse['tta']} {verb} on the {worse['split']} split to {worse['with_tta']:.4f}, from "
              f"{worse['without_tta']:.4f} without it")
    policies = _augment_policies(config)
    views = TTA_VIEWS.get(worse["tta"], "those views")
    if policies and all(_trained_on_views(augment, worse["tta"]) for augment in policies):
        size = ((config.get("data_splits") or {}).get(worse["split"]) or {}).get("images")
        on = f"on {size} images" if size else "on a validation split"
        named = ", ".join(sorted({str(a.get("policy")) for a in policies}))
        print(f"note: {change}, though every trial trained on those views (augment.policy {named} has "
              f"{views}): the cause is not unseen views; {on} such a difference varies with the images scored and "
              f"may be noise. Fix: none needed; --tta none if you want the models exactly as selected",
              file=sys.stderr)
        return
    fix = (f"Fix: --tta {'none' if worse['tta'] == 'flip' else 'none (or flip)'}, or search augmentations that "
           "include them")
    if policies:
        named = ", ".join(sorted({str(a.get("policy")) for a in policies if not _trained_on_views(a, worse["tta"])}))
        print(f"warning: {change}: the trials did not train on those views (augment.policy {named} has no "
              f"{views}), so averaging over them adds errors. {fix}", file=sys.stderr)
    else:   # the trials' augmentation is not recorded: the likely cause, not a certain one
        print(f"warning: {change}: the trials may not have trained on those views ({views}), and averaging over "
              f"views a model never saw adds errors. {fix}", file=sys.stderr)


def _augment_policies(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The augment settings of each trial of the export (one, or an ensemble's members); none if any is unknown."""
    trials = config.get("trials") or ([config["trial"]] if isinstance(config.get("trial"), dict) else [])
    found = []
    for trial in trials:
        recorded = [trial.get(key) for key in ("config_with_defaults", "config") if isinstance(trial.get(key), dict)]
        if not recorded:
            return []
        augment = next((c["augment"] for c in recorded if isinstance(c.get("augment"), dict)), {"policy": "none"})
        found.append(augment)
    return found


def _trained_on_views(augment: dict[str, Any], tta: str) -> bool:
    """Whether an augment policy (augment/policies.py) draws the views --tta `tta` averages over."""
    policy = augment.get("policy", "none")
    steps = (augment.get("sub_policies") or {}).values()
    flips = policy in ("flip_shift", "flip_rotate", "affine") or policy == "searched" and any(
        isinstance(step, dict) and step.get("op") == "hflip" and step.get("prob", 0.5) > 0 for step in steps)
    if tta == "flip":
        return flips
    # dihedral: quarter turns too, drawn only by a rotation range of 90 degrees or more (affine: no up-down flip,
    # so it needs the half turn as well)
    degrees = float(augment.get("rotate_degrees", 15.0))
    return policy == "flip_rotate" and degrees >= 90 or policy == "affine" and degrees >= 180


def _warn_of_ancestors(config: dict[str, Any], source: dict[str, Any], how: str, ancestors: dict[str, int],
                       fix: str) -> None:
    """Test images an ancestor of the weights trained on (an export or run their own run started from): named,
    with a fix that works, since splitting as the weights' own study did cannot move images another run learned."""
    own = source["test_images"] - sum(ancestors.values())
    named = ", ".join(f"{who} ({n})" for who, n in ancestors.items())
    split_alike = "for those of the weights' own run, split as that study did; for the others, " if own else ""
    print(f"warning: {source['test_images']} of the {config['test_size']} test images were trained or selected "
          f"on in the lineage of {how} ({source['weights']}): " + (f"{own} by its own run, the others " if own else "")
          + f"by the run of weights it started from (trained_on.json inherited_from): {named}. The test metrics "
          f"are optimistic. Fix: {split_alike}keep those images out of the test split, or {fix}", file=sys.stderr)


def warn_dominated(number: int, front: list[int]) -> None:
    print(f"warning: trial {number} is not on the Pareto front (trials {', '.join(map(str, front))}): one of those "
          "is at least as good in every objective and better in one. Fix: --trial N with N from the front "
          "(searchlab status lists it)", file=sys.stderr)


def _warn_of_withheld_intervals(config: dict[str, Any]) -> None:
    """Test metrics resting on a class of too few test patients (images) have no interval: say which, and why,
    once per reason (the headline shows only AUC, accuracy and the objectives)."""
    by_reason: dict[str, list[str]] = {}
    for name, method in (config.get("test_metrics_ci95_method") or {}).items():
        if str(method).startswith("no CI: "):
            by_reason.setdefault(method.removeprefix("no CI: "), []).append(name)
    for reason, names in by_reason.items():
        print(f"warning: no 95% interval for {', '.join(names)}: {reason} (null in config.json's "
              "test_metrics_ci95; an interval from so few would be far too narrow). Fix: a test split with more "
              "patients (images, without patient groups) of each class named, or report those metrics without an "
              "interval", file=sys.stderr)


def _warn_if_over_budget_now(config: dict[str, Any]) -> None:
    """A trial that ran under an earlier, looser architecture budget than the study's now (a resume lowered
    budget.max_*): config.json's search.budget records the new one, so the export read as fitting it."""
    over = config.get("over_budget_now")
    if not over:
        return
    who = f"trial {config['trial']['number']} is" if isinstance(config.get("trial"), dict) else \
        "members of this ensemble are"
    print(f"warning: {who} over the study's current architecture budget ({over}): trained under an earlier "
          "one, before a resume lowered budget.max_*; search.budget in config.json is the current one "
          "(recorded as over_budget_now). Fix: export a trial within the budget with --trial N (searchlab trials "
          "RUN shows each trial's params, flops and depth), or keep this one knowing it does not fit",
          file=sys.stderr)


def _warn_if_few_test_images_of_a_class(config: dict[str, Any]) -> None:
    """With a handful of test images of a class (multi-label: of a label's positives or negatives), every
    metric about it moves by a large step per image, 1/n for n images of it: the intervals in config.json say how
    much, but a headline number hides it. With patients, their count too (one patient's images move together)."""
    matrix, names = config.get("test_confusion"), config["class_names"]
    if not matrix:
        return
    patients = config.get("test_patients_per_class") or {}   # with patient groups (intervals.patients_per_class)
    counted: dict[str, int | None] = {}
    if config["task"] == "multilabel":   # per label: [tn, fp, fn, tp]
        counts = {f"{name} positives": row[2] + row[3] for name, row in zip(names, matrix)}
        counts.update({f"{name} negatives": row[0] + row[1] for name, row in zip(names, matrix)})
        counted = {f"{name} {side}": (patients.get(name) or {}).get(side) for name in names
                   for side in ("positives", "negatives")}
    else:                                # rows: the true classes
        counts = {f"class {name!r}": sum(row) for name, row in zip(names, matrix)}
        counted = {f"class {name!r}": patients.get(name) for name in names}
    few = {what: n for what, n in counts.items() if 0 < n < 10}
    if not few:
        return
    ci = (config.get("test_metrics_ci95") or {}).get("sensitivity")
    width = f" (the sensitivity interval is [{ci[0]:.2f}, {ci[1]:.2f}])" if ci and f"class {names[-1]!r}" in few \
        and config["task"] == "binary" else ""
    listed = ", ".join(f"{n} of {what}{_of_patients(counted.get(what))}" for what, n in few.items())
    alike = " (and one patient's images move them together)" if patients else ""
    print(f"warning: the test split has only {listed}: {_step_per_image(few)}{alike}{width}; read the intervals in "
          "config.json, not the point values", file=sys.stderr)


def _of_patients(count: int | None) -> str:
    return "" if count is None else f" ({count} patient{'s' * (count != 1)})"


def _step_per_image(few: dict[str, int]) -> str:
    """How far one image moves the metrics about its class: 1/n for each count n (the smallest count's step
    for all of them said 1/2 of 8 positives)."""
    if len(set(few.values())) == 1:
        n = next(iter(few.values()))
        return ("the metrics about it rest on that one image" if n == 1 and len(few) == 1 else
                "the metrics about each rest on its one image" if n == 1 else
                f"each of those images moves the metrics about it by 1/{n} or more")
    by_count: dict[int, list[str]] = {}
    for what, n in few.items():
        by_count.setdefault(n, []).append(what)
    steps = "; ".join(f"1/{n} for {', '.join(whats)}" if n > 1 else f"those about {', '.join(whats)} rest on one "
                      "image" for n, whats in by_count.items())
    return f"one of those images moves the metrics about it by 1/n or more, n being its count: {steps}"


def _warn_if_one_class(config: dict[str, Any]) -> None:
    if said := one_class_said(config):
        print(f"warning: {said}", file=sys.stderr)


def one_class_said(config: dict[str, Any]) -> str | None:
    """A model that gives every validation image the same label (short trials on an imbalanced set) exports
    fine and looks fine by AUC; say so (the export's terminal, and the report). Judged on the exported model's
    own metrics (not a mean over CV folds)."""
    val = config.get("model_validation_metrics") or config.get("validation_metrics") or {}
    if config["task"] != "binary" or "sensitivity" not in val or "specificity" not in val:
        return None
    if {val["sensitivity"], val["specificity"]} != {0.0, 1.0}:
        return None
    label = config["class_names"][1 if val["sensitivity"] == 1.0 else 0]
    return (f"at its threshold ({config['threshold']:.3g}) this model labels every validation image "
            f"'{label}' (sensitivity {val['sensitivity']:.0f}, specificity {val['specificity']:.0f}). Fix: "
            + _one_class_fixes(config))


def _one_class_fixes(config: dict[str, Any]) -> str:
    """The remedies a one-class model's trial did not already use (an ensemble's: its best member's)."""
    trial = config.get("trial") or (config.get("trials") or [{}])[0]
    imbalance = (trial.get("config") or {}).get("imbalance") or {}
    fixes = ["train longer (budget.epochs)"]
    if imbalance.get("threshold", "fixed") == "fixed":
        fixes.append("let the search pick the threshold (imbalance.threshold: youden)")
    if not _weighted(imbalance):
        fixes.append("when the classes are imbalanced, weight them (imbalance.loss: weighted_ce with "
                     "class_weight_power above 0)")
    return ", or ".join(fixes)


def _warn_if_a_label_is_always_on(config: dict[str, Any]) -> None:
    """A multi-label threshold of 0 (F1's choice for a label the model cannot separate) flags every image; so
    does 0.5 for a label whose probabilities all sit just above it (an undertrained head, a label never on in
    validation, where no threshold can be chosen): judged on the test predictions too."""
    if config["task"] != "multilabel":
        return
    names, chosen = config["class_names"], config["threshold"]
    thresholds = chosen if isinstance(chosen, list) else [chosen] * len(names)
    always = [name for name, t in zip(names, thresholds) if t <= 0.0]
    if always:
        print(f"warning: the threshold chosen on validation for label(s) {', '.join(map(repr, always))} is 0: the "
              "model flags every image with them, as it does not tell them apart there. Fix: more images of "
              "those labels, longer training, or imbalance.threshold: youden", file=sys.stderr)
    # test_confusion per label: [tn, fp, fn, tp]; nothing predicted negative means every image flagged
    on_all = [name for name, (tn, _, fn, _) in zip(names, config.get("test_confusion") or [])
              if tn + fn == 0 and name not in always]
    if on_all:
        print(f"warning: the model flags every one of the {config['test_size']} test images with label(s) "
              f"{', '.join(map(repr, on_all))}, so exact-match accuracy and hamming loss count them as wrong "
              f"wherever they are off. Fix: {_always_on_fixes(config, on_all)}", file=sys.stderr)
    _warn_if_a_label_is_never_on(config)


def _warn_if_a_label_is_never_on(config: dict[str, Any]) -> None:
    """A label flagged on no test image though some have it. Where the split its threshold was chosen on held
    none (or only) of it, the threshold stayed at 0.5 unchosen, and only images of it there help; the other
    remedies are those the trial did not already use ('use youden' was said to a youden trial)."""
    names = config["class_names"]
    never = {name: fn for name, (_, fp, fn, tp) in zip(names, config.get("test_confusion") or [])
             if tp + fp == 0 and fn > 0}
    if not never:
        return
    head = (f"warning: the model flags none of the {config['test_size']} test images with label(s) "
            f"{', '.join(f'{name!r} ({fn})' for name, fn in never.items())}, though that many images have them")
    unchosen, images = _one_sided_where_chosen(config, list(never))
    learned_not = [name for name in never if name not in unchosen]
    if not unchosen:
        print(f"{head}: it has not learned them (sensitivity 0). Fix: {_never_on_fixes(config)}", file=sys.stderr)
        return
    where = "train+val images (out of fold)" if _out_of_fold(config) else "validation images"
    listed, others = ", ".join(map(repr, unchosen)), ", ".join(map(repr, learned_not))
    why = "; ".join(f"{name!r} is on in {side} of the {images} {where}" for name, side in unchosen.items())
    sides = {"with" if side == "none" else "without" for side in unchosen.values()}
    # a bag chose on all of train+val: only the data set can give it more; else the split can
    into = "train+val (more such images, or a smaller test split)" if _out_of_fold(config) else \
        "the validation split (a larger data.val_fraction, or a data.split_column that marks some of them val)"
    print(f"{head} (sensitivity 0): {why}, so no threshold could be chosen for {listed} there and 0.5 was kept"
          + (f"; {others} has not been learned" if learned_not else "")
          + f". Fix: put images {' and '.join(sorted(sides))} {listed} in {into}"
          + (f"; for {others}: {_never_on_fixes(config)}" if learned_not else ""), file=sys.stderr)


def _out_of_fold(config: dict[str, Any]) -> bool:
    """Whether the threshold was chosen on a bag's out-of-fold train+val predictions, not on validation."""
    return str((config.get("threshold_choice") or {}).get("split", "val")).startswith("out-of-fold")


def _one_sided_where_chosen(config: dict[str, Any], labels: list[str]) -> tuple[dict[str, str], int]:
    """Labels on in none or all of the images their threshold was chosen on (choose_threshold keeps 0.5 there),
    each with 'none' or 'all', and how many images those are; judged by data_splits, so none when not recorded."""
    splits = config.get("data_splits") or {}
    parts = [splits.get(p) or {} for p in (("train", "val") if _out_of_fold(config) else ("val",))]
    if not all(isinstance(part.get("per_class"), dict) and part.get("images") for part in parts):
        return {}, 0
    images = sum(part["images"] for part in parts)
    found = {}
    for name in labels:
        counts = [part["per_class"].get(name) for part in parts]
        if None not in counts and sum(counts) in (0, images):
            found[name] = "none" if sum(counts) == 0 else "all"
    return found, images


def _never_on_fixes(config: dict[str, Any]) -> str:
    """Remedies for labels the model has not learned, less those its trial (an ensemble's best member) used."""
    imbalance = _trial_imbalance(config)
    rule = (config.get("threshold_choice") or {}).get("rule") or (imbalance or {}).get("threshold")
    fixes = ["train longer (budget.epochs)"]
    if imbalance is None:   # not recorded: every remedy, as it was
        fixes.append("weigh rare labels (imbalance.loss: weighted_ce or focal, imbalance.sampler: balanced)")
    else:
        weigh = [] if _weighted(imbalance) else ["imbalance.loss: weighted_ce or focal"]
        weigh += [] if imbalance.get("sampler") == "balanced" else ["imbalance.sampler: balanced"]
        if weigh:
            fixes.append(f"weigh rare labels ({', '.join(weigh)})")
    if rule in (None, "fixed"):
        fixes.append("let the search choose thresholds (imbalance.threshold: youden)")
    return ", ".join(fixes) + ", or drop them from data.label_columns"


def _trial_imbalance(config: dict[str, Any]) -> dict[str, Any] | None:
    """The imbalance settings of the export's trial (an ensemble's best member), None when not recorded."""
    trial = config.get("trial") if isinstance(config.get("trial"), dict) else (config.get("trials") or [{}])[0]
    for key in ("config_with_defaults", "config"):
        if isinstance(trial.get(key), dict):
            imbalance = trial[key].get("imbalance")
            return imbalance if isinstance(imbalance, dict) else {}
    return None


def _weighted(imbalance: dict[str, Any]) -> bool:
    """Whether a loss weighs the classes (labels): weighted CE, or focal with balanced alpha, at a power above 0."""
    loss = imbalance.get("loss", "ce")
    return (loss == "weighted_ce" or loss == "focal" and imbalance.get("focal_alpha", "balanced") == "balanced") \
        and imbalance.get("class_weight_power", 1.0) != 0


RARE_SHARE = 0.2   # a label on in fewer than this share of the training images is weighed; a commoner one is not


def _always_on_fixes(config: dict[str, Any], on_all: list[str]) -> str:
    """Remedies that fit the labels flagged on every test image: 'weigh the rare label' said of the commonest
    label, at a fixed 0.5, pointed the wrong way."""
    splits = config.get("data_splits") or {}
    train, val = splits.get("train") or {}, splits.get("val") or {}
    share = {name: train["per_class"][name] / train["images"] for name in on_all
             if train.get("images") and name in (train.get("per_class") or {})}
    rare = [name for name in on_all if name in share and share[name] < RARE_SHARE]
    common = [name for name in on_all if name in share and name not in rare]
    rule = (config.get("threshold_choice") or {}).get("rule")
    fixes = ["train longer (budget.epochs)"]
    if rule == "fixed":   # 0.5, tuned on nothing
        fixes.append("let the search choose each label's threshold on validation (imbalance.threshold: youden)")
    elif rule == "f1" and common:   # flagging every image gives a common label a high F1 (recall 1)
        fixes.append("choose thresholds by imbalance.threshold: youden (F1 favours flagging a common label on "
                     "every image)")
    unseen = [name for name in on_all if (val.get("per_class") or {}).get(name) == 0]
    if unseen:
        fixes.append(f"give the validation split positives of {', '.join(map(repr, unseen))} so a threshold can "
                     "be chosen")
    if rare or not share:   # how common a label is unknown (no data_splits recorded): the advice as it was
        which = ", ".join(map(repr, rare)) if rare else "the rare label"
        fixes.append(f"weigh {which} (imbalance.loss: weighted_ce or focal), or drop it from data.label_columns")
    said = ", ".join(fixes[:-1]) + " or " + fixes[-1] if len(fixes) > 1 else fixes[0]
    if common:   # weighting a label on in half the images would only flag it more
        said += " (" + ", ".join(f"{name!r} is on in {share[name]:.0%} of the training images" for name in common) \
            + ": a common label, not one to weigh)"
    return said


def _not_recorded(unknown: list[dict[str, str]]) -> str:
    """trained_on.py's `not_recorded` entries as a sentence's list: which folder, the key saying so, and why."""
    return "; ".join(f"{item.get('weights')} ({item.get('key')}: {item.get('why', 'not recorded')})"
                     for item in unknown)
