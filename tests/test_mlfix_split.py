"""A multi-label label with fewer positives than splits stays in train (data/label_stratify.py's rule)."""
import numpy as np


def test_a_label_on_twice_stays_in_train_with_two_held_out_splits_of_a_quarter_each():
    from searchlab.data.common import label_stratified_split

    for seed in range(10):
        rng = np.random.default_rng(seed)
        labels = np.stack([rng.random(100) < p for p in (0.43, 0.37)] + [np.zeros(100, bool)], 1).astype(int)
        labels[[3, 70], 2] = 1   # on twice: fewer than train/val/test, so it can only be learned if train keeps both
        parts = label_stratified_split(labels, {"val": 0.25, "test": 0.25}, seed, "m.csv")
        assert {k: len(v) for k, v in parts.items()} == {"train": 50, "val": 25, "test": 25}
        assert {3, 70} <= set(parts["train"].tolist()), (seed, labels[parts["test"]].sum(0))


def test_a_patient_with_the_only_two_positives_of_a_label_stays_in_train():
    from searchlab.data.label_stratify import deal_by_labels

    positives = np.zeros((40, 2), int)
    positives[:, 0] = np.arange(40) % 2   # a common label, half the patients
    positives[[7, 21], 1] = 1             # a label on in two patients, with 2 held-out splits
    sizes = np.full(40, 2)
    for seed in range(10):
        split_of = deal_by_labels(positives, sizes, [40, 20, 20], [0.25, 0.25], np.random.default_rng(seed))
        assert split_of[[7, 21]].tolist() == [0, 0], seed
        assert [int(sizes[split_of == b].sum()) for b in range(3)] == [40, 20, 20]
