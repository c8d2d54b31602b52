"""Greedy forward selection of ensemble members (export/selection.py) on predictions whose merit is known."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from searchlab.config.load import load_study
from searchlab.errors import ConfigError
from searchlab.export.selection import forward_select


def _members(seed=0, n=400):
    """Labels and three members: two noisy views of the label with independent noise (their mean is better
    than either), and one that is pure noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    first, second = (1 / (1 + np.exp(-(2 * labels - 1 + rng.normal(0, 1.5, n)))) for _ in range(2))
    return labels, [first, rng.random(n), second]


def test_forward_select_adds_the_member_that_helps_and_leaves_out_noise():
    labels, members = _members()
    auc = lambda probs: roc_auc_score(labels, probs)   # noqa: E731
    chosen, scores = forward_select(members, auc)
    assert chosen == [0, 2]
    assert scores == [auc(members[0]), auc((members[0] + members[2]) / 2)] and scores[1] > scores[0]
    assert auc(np.mean(members, axis=0)) < scores[1]   # all three (what rank alone exports) is worse


def test_forward_select_stops_at_a_tie_and_keeps_a_lone_best():
    labels, members = _members(seed=1)
    auc = lambda probs: roc_auc_score(labels, probs)   # noqa: E731
    assert forward_select([members[0], members[0].copy()], auc) == ([0], [auc(members[0])])
    assert forward_select([members[0], members[1]], auc)[0] == [0]


def test_greedy_select_needs_more_than_one_candidate(write_study):
    path = write_study("name: s\nspace: {optim: {lr: 0.001}}\nexport: {top_k: 1, select: greedy}\n")
    with pytest.raises(ConfigError, match="top_k") as info:
        load_study(path)
    assert "Fix: top_k: 5" in str(info.value)


def test_an_average_worse_than_one_of_its_members_is_reported_with_both_scores(monkeypatch):
    from types import SimpleNamespace

    from searchlab.export import selection

    labels, (good, noise, other) = _members(seed=2)
    trials = [SimpleNamespace(number=n, user_attrs={"config": {}}, params={}) for n in (4, 7, 9)]
    run = SimpleNamespace(record={"objectives": [["auc", "maximize"]]})
    config = {"task": "binary", "class_names": ["benign", "malignant"]}

    def below(members):
        monkeypatch.setattr(selection, "held_out_per_trial", lambda *a: (labels, members, "val"))
        return selection.weaker_than_a_member(run, None, config, trials[:len(members)])

    record = below([noise, good])   # the noise member ranked first: the average is worse than trial 7 alone
    assert record == {"metric": "auc", "split": "val", "member": 7,
                      "ensemble": pytest.approx(roc_auc_score(labels, (noise + good) / 2)),
                      "member_value": pytest.approx(roc_auc_score(labels, good))}
    assert record["ensemble"] < record["member_value"]
    assert below([good, other]) is None   # two informative members: their mean beats both
