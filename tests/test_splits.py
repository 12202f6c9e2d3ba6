"""Split invariants: a partition of the clips, no group straddling splits, class proportions, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from utils.data.splits import Splits, make_splits, split_report


def signer_dataset(num_signers: int = 10, num_classes: int = 10, clips_per_class: int = 40):
    """Labels and signer groups shaped like the synthetic default (every signer signs every class)."""
    per_signer = clips_per_class // num_signers
    labels = np.tile(np.repeat(np.arange(num_classes), per_signer), num_signers)
    groups = np.repeat([f"signer{i:02d}" for i in range(num_signers)], num_classes * per_signer)
    return labels, groups


def assert_partition(splits: Splits, num_clips: int) -> None:
    """Every clip is in exactly one split; indices sorted."""
    together = np.concatenate([splits.train, splits.val, splits.test])
    assert sorted(together.tolist()) == list(range(num_clips))
    for part in (splits.train, splits.val, splits.test):
        assert np.all(np.diff(part) > 0)


def groups_of(splits: Splits, groups: np.ndarray) -> dict[str, set[str]]:
    """The set of groups in each split."""
    return {name: set(groups[splits[name]]) for name in ("train", "val", "test")}


def test_group_disjoint_gives_six_two_two_signers_with_every_class_everywhere() -> None:
    labels, groups = signer_dataset()
    splits = make_splits(labels, groups)
    assert splits.strategy == "group-disjoint"
    assert_partition(splits, len(labels))
    by_split = groups_of(splits, groups)
    assert [len(by_split[n]) for n in ("train", "val", "test")] == [6, 2, 2]
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"]
                or by_split["val"] & by_split["test"])
    for name in ("train", "val", "test"):
        assert set(labels[splits[name]]) == set(range(10))


def test_single_class_groups_are_spread_so_each_class_reaches_each_split() -> None:
    rng = np.random.default_rng(3)  # UCF11-like: 11 actions x 25 groups of 4-7 clips, one action per group
    sizes = rng.integers(4, 8, size=(11, 25))
    labels = np.concatenate([np.full(sizes[c, g], c) for c in range(11) for g in range(25)])
    groups = np.concatenate([np.full(sizes[c, g], f"a{c}_{g:02d}") for c in range(11) for g in range(25)])
    splits = make_splits(labels, groups)
    assert_partition(splits, len(labels))
    by_split = groups_of(splits, groups)
    assert not (
        by_split["train"] & by_split["test"] or by_split["val"] & (by_split["train"] | by_split["test"])
    )
    for name, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert set(labels[splits[name]]) == set(range(11))
        assert abs(len(splits[name]) / len(labels) - share) < 0.03


def test_stratified_keeps_class_proportions() -> None:
    labels = np.repeat(np.arange(5), [10, 10, 20, 5, 30])
    splits = make_splits(labels)
    assert splits.strategy == "stratified"
    assert_partition(splits, len(labels))
    for label, count in zip(range(5), (10, 10, 20, 5, 30)):
        in_test = np.sum(labels[splits.test] == label)
        in_val = np.sum(labels[splits.val] == label)
        assert in_test == max(1, round(0.2 * count)) and in_val == max(1, round(0.2 * count))


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels, groups = signer_dataset()
    first, again = make_splits(labels, groups, seed=0), make_splits(labels, groups, seed=0)
    for name in ("train", "val", "test"):
        assert np.array_equal(first[name], again[name])
    others = [make_splits(labels, groups, seed=s) for s in range(1, 6)]
    assert any(not np.array_equal(first.test, other.test) for other in others)
    strat = make_splits(labels, seed=7), make_splits(labels, seed=7)
    assert np.array_equal(strat[0].val, strat[1].val)


def test_held_out_group_is_the_whole_test_set_and_val_is_group_disjoint() -> None:
    labels, groups = signer_dataset()
    splits = make_splits(labels, groups, test_group="signer03")
    assert splits.strategy == "held-out group"
    assert_partition(splits, len(labels))
    assert np.array_equal(splits.test, np.flatnonzero(groups == "signer03"))
    by_split = groups_of(splits, groups)
    assert by_split["test"] == {"signer03"} and not by_split["train"] & by_split["val"]
    assert len(by_split["val"]) >= 1


def test_unknown_test_group_lists_the_known_groups() -> None:
    labels, groups = signer_dataset(num_signers=4, clips_per_class=4)
    with pytest.raises(ValueError, match="known groups: signer00, signer01, signer02, signer03"):
        make_splits(labels, groups, test_group="bob")


def test_auto_falls_back_to_stratified_with_two_groups_and_group_split_refuses() -> None:
    labels, groups = signer_dataset(num_signers=2, clips_per_class=10)
    assert make_splits(labels, groups).strategy == "stratified"
    with pytest.raises(ValueError, match="at least 3 groups"):
        make_splits(labels, groups, strategy="group")


def test_a_class_with_one_clip_cannot_be_stratified() -> None:
    labels = np.array(["a"] * 5 + ["b"] * 5 + ["lonely"])
    with pytest.raises(ValueError, match="class 'lonely' has only 1 clip"):
        make_splits(labels)


def test_given_split_is_used_and_val_is_carved_from_train_when_missing() -> None:
    labels = np.tile(np.arange(4), 10)
    given = np.array(["train"] * 30 + ["test"] * 10)
    splits = make_splits(labels, split=given)
    assert splits.strategy.startswith("given")
    assert np.array_equal(splits.test, np.arange(30, 40))
    assert set(splits.val) < set(range(30)) and len(splits.val) == round(30 * 0.25)
    with_val = np.array(["train"] * 20 + ["val"] * 10 + ["test"] * 10)
    exact = make_splits(labels, split=with_val)
    assert exact.strategy == "given" and np.array_equal(exact.val, np.arange(20, 30))
    partial = np.array(["train"] * 20 + [""] * 20)  # not given for every clip: ignored
    assert make_splits(labels, split=partial).strategy == "stratified"


def test_bad_arguments_are_explained() -> None:
    labels = np.tile(np.arange(3), 10)
    with pytest.raises(ValueError, match="fractions"):
        make_splits(labels, fractions=(0.5, 0.5, 0.0))
    with pytest.raises(ValueError, match="one value per clip"):
        make_splits(labels, groups=["a", "b"])
    with pytest.raises(ValueError, match="unknown strategy"):
        make_splits(labels, strategy="random")


def test_split_report_counts_per_class_and_totals() -> None:
    labels, groups = signer_dataset()
    splits = make_splits(labels, groups)
    report = split_report(splits, labels, [f"sign{i}" for i in range(10)])
    assert list(report.columns) == ["train", "val", "test", "total"]
    assert report.loc["total", "total"] == len(labels)
    assert report.loc["total", "test"] == len(splits.test)
    assert report.loc["sign4", "train"] == np.sum(labels[splits.train] == 4)
    assert (report.loc[[f"sign{i}" for i in range(10)], "total"] == 40).all()


def _four_real_like_signers():
    """Labels and groups shaped like the four real signers: each shows a different subset of the signs."""
    shows = {"ismokedata": ["hello", "iloveyou", "no", "please", "thanks", "yes"],
             "jeet10": ["father", "hello", "iloveyou", "mother", "thanks", "yes"],
             "sarmskunatham": ["hello", "no", "please", "yes"],
             "luja_manandhar": ["father", "help", "mother"]}
    classes = sorted({c for signs in shows.values() for c in signs})
    labels, groups = [], []
    for signer, signs in shows.items():
        for sign in signs:
            labels += [classes.index(sign)] * 5
            groups += [signer] * 5
    return np.array(labels), np.array(groups)


@pytest.mark.parametrize("test_signer", ["ismokedata", "jeet10", "sarmskunatham", "luja_manandhar"])
def test_validation_never_takes_a_sign_out_of_training(test_signer):
    """Held-out signer folds of few signers: every sign shown on the training side keeps training clips."""
    labels, groups = _four_real_like_signers()
    split = make_splits(labels, groups=groups, test_group=test_signer, seed=0)
    rest = groups != test_signer
    assert set(labels[split.train]) == set(labels[rest])
    assert len(split.val) > 0 and not set(split.val) & set(split.train)
    assert test_signer not in set(groups[split.val]) | set(groups[split.train])
    # sarmskunatham's signs are all shown by ismokedata: a whole validation signer
    if test_signer == "jeet10":
        assert set(groups[split.val]) == {"sarmskunatham"} and "groups" in split.strategy
    # every training signer has a sign of its own: validation by clip, said so
    if test_signer == "ismokedata":
        assert "stratified by clip" in split.strategy


# ----------------------------------------------------------------------------- the same people in every
# comparison
def _signers_and_labels(num_signers: int = 10, clips: int = 40, num_classes: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"s{i:02d}" for i in range(num_signers)], clips)
    labels = rng.integers(0, num_classes, size=len(groups))
    return labels, groups


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("with_groups", [True, False])
def test_validation_does_not_change_the_test_clips(seed: int, with_groups: bool) -> None:
    """Models trained with and without validation are tested on the same clips (the same signers)."""
    from utils.data.splits import split_fractions

    labels, groups = _signers_and_labels()
    groups = groups if with_groups else None
    with_val = make_splits(labels, groups, seed=seed, fractions=split_fractions(True))
    without = make_splits(labels, groups, seed=seed, fractions=split_fractions(False))
    assert np.array_equal(with_val.test, without.test)
    assert with_val.groups_of("test", groups) == without.groups_of("test", groups)
    assert len(with_val.val) > 0 and len(without.val) == 0
    assert np.array_equal(np.sort(np.concatenate([with_val.train, with_val.val])), without.train)
    if with_groups:  # validation signers come from the training side, never from the test signers
        assert set(with_val.groups_of("val", groups)).isdisjoint(with_val.groups_of("test", groups))
        assert set(with_val.groups_of("val", groups)).isdisjoint(with_val.groups_of("train", groups))


def test_another_seed_tests_other_signers() -> None:
    labels, groups = _signers_and_labels()
    tested = {tuple(make_splits(labels, groups, seed=seed).groups_of("test", groups)) for seed in range(6)}
    assert len(tested) > 1
