"""Train / validation / test splits: given by the dataset, a held-out group, group-disjoint, or stratified.

Group-disjoint means no group (signer, UCF11 video group) has clips in two splits, so the test score says
how well the model does on people (or scenes) it has never seen; a stratified split by clip lets clips
of one signer land on both sides and usually scores higher for that reason.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from utils.errors import SplitError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Splits:
    """Sorted clip indices of each split and how they were chosen."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    strategy: str

    def __getitem__(self, name: str) -> np.ndarray:
        """The indices of the split called name ('train', 'val' or 'test')."""
        if name not in SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; use one of {SPLIT_NAMES}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Number of clips in each split."""
        return {name: len(self[name]) for name in SPLIT_NAMES}

    def groups_of(self, name: str, groups: Sequence | np.ndarray | None) -> list[str]:
        """The distinct groups (e.g. signers) with clips in the split called name; [] without groups."""
        if groups is None:
            return []
        return sorted({str(g) for g in np.asarray(groups)[self[name]] if str(g)})


# ----------------------------------------------------------------------------- checks and small helpers
def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    """Fractions (train, val, test) as an array summing to 1; ValueError when they make no sense."""
    values = np.asarray(fractions, dtype=float)
    if values.shape != (3,) or np.any(values < 0) or values[0] <= 0 or values[2] <= 0:
        raise SplitError(f"fractions must be three numbers (train, val, test) >= 0 with train and test > 0, "
                         f"got {tuple(fractions)}")
    return values / values.sum()


def _as_strings(values: Sequence | np.ndarray | None, num_clips: int, name: str) -> np.ndarray | None:
    """A per-clip array of strings, or None; ValueError when its length is not the number of clips."""
    if values is None:
        return None
    array = np.asarray(values).astype(str)
    if array.shape != (num_clips,):
        raise SplitError(f"{name} must have one value per clip ({num_clips}), got shape {array.shape}")
    return array


def _finish(parts: dict[str, list[int] | np.ndarray], strategy: str) -> Splits:
    """Splits from lists of indices, sorted and as int64."""
    return Splits(**{name: np.sort(np.asarray(parts.get(name, []), dtype=np.int64)) for name in SPLIT_NAMES},
                  strategy=strategy)


def _known_groups(groups: np.ndarray | None) -> list[str]:
    """Sorted distinct non-empty groups."""
    return [] if groups is None else sorted({g for g in groups if g})


# ----------------------------------------------------------------------------- stratified by class
def _stratified(labels: np.ndarray, indices: np.ndarray, fractions: np.ndarray,
                rng: np.random.Generator) -> dict[str, list[int]]:
    """Split indices so every class keeps the fractions (each class at least one train and one test clip)."""
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for label in np.unique(labels[indices]):
        members = rng.permutation(indices[labels[indices] == label])
        count = len(members)
        if count < 2:
            raise SplitError(f"class {label!r} has only {count} clip here; a stratified split needs at least "
                             f"2 (3 for a validation clip too). Record more clips or drop the class.")
        num_test = max(1, round(count * fractions[2]))
        num_val = max(1, round(count * fractions[1])) if fractions[1] > 0 and count >= 3 else 0
        while count - num_test - num_val < 1:  # keep at least one training clip
            num_val, num_test = (num_val - 1, num_test) if num_val > num_test else (num_val, num_test - 1)
        parts["test"] += members[:num_test].tolist()
        parts["val"] += members[num_test:num_test + num_val].tolist()
        parts["train"] += members[num_test + num_val:].tolist()
    return parts


# ----------------------------------------------------------------------------- group-disjoint
def _group_disjoint(labels: np.ndarray, groups: np.ndarray, indices: np.ndarray, fractions: np.ndarray,
                    rng: np.random.Generator) -> dict[str, list[int]]:
    """Assign whole groups to splits, greedily bringing each class's counts toward the fractions."""
    active = [i for i, f in enumerate(fractions) if f > 0]
    groups = np.array([g if g else f"\0clip{i}" for i, g in enumerate(groups)])  # ungrouped clip = own group
    group_names = sorted(set(groups[indices]))
    if len(group_names) < len(active):
        raise SplitError(f"a group-disjoint split needs at least {len(active)} groups, found "
                         f"{len(group_names)} ({', '.join(group_names)}). Use strategy='stratified' or "
                         "record more signers.")
    classes = np.unique(labels[indices])
    class_index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(group_names), len(classes)))
    members: dict[str, list[int]] = {g: [] for g in group_names}
    for i in indices:
        members[groups[i]].append(int(i))
    for row, group in enumerate(group_names):
        for i in members[group]:
            counts[row, class_index[labels[i]]] += 1
    class_totals = counts.sum(axis=0)
    targets = fractions[:, None] * class_totals[None, :]
    current = np.zeros_like(targets)
    assignment = np.full(len(group_names), -1)
    shuffled = rng.permutation(len(group_names))
    order = shuffled[np.argsort(-counts.sum(axis=1)[shuffled], kind="stable")]  # biggest groups first
    for row in order:
        # increase of the squared distance to the targets (per class, relative to its size) for each split
        cost = (((current + counts[row] - targets) ** 2 - (current - targets) ** 2) / class_totals).sum(
            axis=1
        )
        cost[[i for i in range(3) if i not in active]] = np.inf
        split = int(np.argmin(cost))
        assignment[row] = split
        current[split] += counts[row]
    _give_every_split_a_group(assignment, counts.sum(axis=1), active)
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for row, group in enumerate(group_names):
        parts[SPLIT_NAMES[assignment[row]]] += members[group]
    return parts


def _give_every_split_a_group(assignment: np.ndarray, sizes: np.ndarray, active: list[int]) -> None:
    """Move the smallest group of the most crowded split into any active split left empty (in place)."""
    for split in active:
        if np.any(assignment == split):
            continue
        donor = max(active, key=lambda s: np.sum(assignment == s))
        candidates = np.flatnonzero(assignment == donor)
        assignment[candidates[np.argmin(sizes[candidates])]] = split


# ----------------------------------------------------------------------------- the strategies
def _given(labels: np.ndarray, groups: np.ndarray | None, split: np.ndarray, fractions: np.ndarray,
           rng: np.random.Generator) -> Splits:
    """The dataset's own split; a validation set is carved from train when the dataset has none."""
    parts = {name: np.flatnonzero(split == name).tolist() for name in SPLIT_NAMES}
    if parts["val"]:
        return _finish(parts, "given")
    train = np.asarray(parts["train"])
    val_share = _validation_share(fractions)
    if groups is not None and len(_known_groups(groups[train])) > 2:
        carved, how = _group_disjoint(labels, groups, train, val_share, rng), "group-disjoint"
    else:
        carved, how = _stratified(labels, train, val_share, rng), "stratified"
    parts["train"], parts["val"] = carved["train"], carved["test"]
    return _finish(parts, f"given (val: {how} from train)")


def _held_out_group(labels: np.ndarray, groups: np.ndarray, test_group: Sequence[str], fractions: np.ndarray,
                    rng: np.random.Generator) -> Splits:
    """Every clip of test_group is test; val is group-disjoint from train among the other groups."""
    known = _known_groups(groups)
    unknown = [g for g in test_group if g not in known]
    if unknown:
        raise SplitError(f"test_group {', '.join(map(repr, unknown))} is not a group of this dataset; "
                         f"known groups: {', '.join(known) or '(none)'}")
    is_test = np.isin(groups, list(test_group))
    rest = np.flatnonzero(~is_test)
    if len(rest) == 0:
        raise SplitError(f"test_group {', '.join(test_group)} holds every clip; nothing is left to train on")
    val_share = _validation_share(fractions)
    if fractions[1] == 0:
        carved, how = {"train": rest.tolist(), "test": []}, "held-out group"
    elif len(_known_groups(groups[rest])) >= 2:
        carved, how = _validation_groups(labels, groups, rest, val_share, rng)
    else:
        carved, how = _stratified(labels, rest, val_share, rng), "held-out group (val: stratified)"
    return _finish({"train": carved["train"], "val": carved["test"], "test": np.flatnonzero(is_test)}, how)


def _validation_groups(labels: np.ndarray, groups: np.ndarray, rest: np.ndarray, val_share: np.ndarray,
                       rng: np.random.Generator) -> tuple[dict[str, list[int]], str]:
    """Validation groups carved from the training side without taking any class out of training.

    The balanced group-disjoint choice first; when it would leave a class with no training clip (few signers,
    each showing other signs), whole groups whose every class another training group also shows; when no group
    can be spared, validation clips drawn per class from the training groups (stratified by clip), said so.
    """
    carved = _group_disjoint(labels, groups, rest, val_share, rng)
    wanted = set(labels[rest].tolist())
    if set(labels[np.asarray(carved["train"], dtype=np.int64)].tolist()) == wanted:
        return carved, "held-out group"
    target = val_share[2] * len(rest)
    names = _known_groups(groups[rest])
    sizes = {g: int(np.sum(groups[rest] == g)) for g in names}
    order = sorted(rng.permutation(names).tolist(), key=lambda g: abs(sizes[g] - target))
    chosen: list[str] = []
    for group in order:
        if sum(sizes[g] for g in chosen) >= target:
            break
        left = rest[~np.isin(groups[rest], chosen + [group])]
        if set(labels[left].tolist()) == wanted:
            chosen.append(group)
    if chosen:
        is_val = np.isin(groups[rest], chosen)
        return ({"train": rest[~is_val].tolist(), "test": rest[is_val].tolist()},
                "held-out group (val: groups whose signs other training groups show too)")
    return (_stratified(labels, rest, val_share, rng),
            "held-out group (val: stratified by clip: every training group shows a sign no other one does)")


def split_fractions(validation: bool = True) -> tuple[float, float, float]:
    """Train/val/test shares: (0.6, 0.2, 0.2), or (0.8, 0.0, 0.2) with no validation clips at all."""
    return (0.6, 0.2, 0.2) if validation else (0.8, 0.0, 0.2)


def make_splits(labels: Sequence | np.ndarray, groups: Sequence | np.ndarray | None = None,
                split: Sequence | np.ndarray | None = None, test_group: str | Sequence[str] | None = None,
                strategy: str = "auto", fractions: Sequence[float] = (0.6, 0.2, 0.2),
                seed: int = 0) -> Splits:
    """Train/val/test indices: the dataset's own split, a held-out group, group-disjoint or stratified."""
    labels = np.asarray(labels)
    num_clips = len(labels)
    groups = _as_strings(groups, num_clips, "groups")
    split = _as_strings(split, num_clips, "split")
    fractions = _check_fractions(fractions)
    if strategy not in ("auto", "stratified", "group", "given"):
        raise SplitError(f"unknown strategy {strategy!r}; use 'auto', 'stratified', 'group' or 'given'")
    rng = np.random.default_rng(seed)
    everything = np.arange(num_clips)
    if test_group is not None:
        if groups is None:
            raise SplitError("test_group needs the groups of the clips (e.g. signers); this dataset has none")
        wanted = [str(test_group)] if isinstance(test_group,
                                                 (str, int, np.integer)) else [str(g) for g in test_group]
        return _held_out_group(labels, groups, wanted, fractions, rng)
    split_given = split is not None and set(split) <= set(SPLIT_NAMES) and {"train", "test"} <= set(split)
    if strategy == "given" and not split_given:
        raise SplitError("strategy='given' needs a split value (train/val/test) for every clip, "
                         "with at least one train and one test clip")
    if split_given and strategy in ("auto", "given"):
        return _given(labels, groups, split, fractions, rng)
    known = _known_groups(groups)
    # Test first, validation second, each with its own random stream: the test clips depend on the seed and
    # the test share only, so two models trained with and without validation are tested on the same people.
    test_rng, val_rng = (np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(2))
    test_only = np.array([1 - fractions[2], 0.0, fractions[2]])
    if strategy == "group" or (strategy == "auto" and len(known) > 2):
        if len(known) < 3:
            raise SplitError(f"a group-disjoint split needs at least 3 groups, found {len(known)}"
                             f"{' (' + ', '.join(known) + ')' if known else ''}. Use strategy='stratified'.")
        parts = _group_disjoint(labels, groups, everything, test_only, test_rng)
        rest = np.asarray(parts["train"], dtype=np.int64)
        if fractions[1] > 0:
            carved, _ = _validation_groups(labels, groups, rest, _validation_share(fractions), val_rng)
            parts = {"train": carved["train"], "val": carved["test"], "test": parts["test"]}
        return _finish(parts, "group-disjoint")
    parts = _stratified(labels, everything, test_only, test_rng)
    if fractions[1] > 0:
        rest = np.asarray(parts["train"], dtype=np.int64)
        carved = _stratified_validation(labels, rest, _validation_share(fractions)[2], val_rng)
        parts = {"train": carved["train"], "val": carved["val"], "test": parts["test"]}
    return _finish(parts, "stratified")


def _validation_share(fractions: np.ndarray) -> np.ndarray:
    """(train, 0, val) shares of the clips left once the test clips are set aside."""
    val = fractions[1] / (fractions[0] + fractions[1])
    return np.array([1 - val, 0.0, val])


def _stratified_validation(labels: np.ndarray, indices: np.ndarray, share: float,
                           rng: np.random.Generator) -> dict[str, list[int]]:
    """Validation clips drawn per class from indices; a class with fewer than 3 clips keeps them all for
    training."""
    parts: dict[str, list[int]] = {"train": [], "val": []}
    for label in np.unique(labels[indices]):
        members = rng.permutation(indices[labels[indices] == label])
        num_val = min(max(1, round(len(members) * share)), len(members) - 1) if len(members) >= 3 else 0
        parts["val"] += members[:num_val].tolist()
        parts["train"] += members[num_val:].tolist()
    return parts


def split_report(splits: Splits, labels: Sequence | np.ndarray, classes: Sequence[str]):
    """Table of clip counts per class (rows, plus 'total') and split (columns, plus 'total')."""
    import pandas as pd

    labels = np.asarray(labels)
    table = pd.DataFrame(0, index=list(classes), columns=[*SPLIT_NAMES, "total"])
    for name in SPLIT_NAMES:
        counts = np.bincount(labels[splits[name]], minlength=len(classes))
        table[name] = counts[:len(classes)]
    table["total"] = table[list(SPLIT_NAMES)].sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    table.index.name = "class"
    table.attrs["strategy"] = splits.strategy
    return table
