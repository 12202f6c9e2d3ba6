"""benchmarks/rejected_groups.py: which signer's signs count as rejected, and which pairs as swapped."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cleanlab")  # rejected_groups imports label_issues, which needs it


def _rejected_groups():
    """benchmarks/rejected_groups.py, imported as it imports its neighbours (by name, from benchmarks/)."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module("rejected_groups")


def test_a_group_is_rejected_only_when_every_model_misses_it_and_swaps_are_found():
    rejected = _rejected_groups()
    signers = np.repeat(["s1", "s2"], 8)
    labels = np.tile(np.repeat(["a", "b"], 4), 2)
    clips = rejected.study.ClipSet(np.zeros((16, 30, 1662), np.float32), labels, signers)
    swapped = np.where(labels == "a", "b", "a")
    answers = {"linear": labels.copy(), "boosted": labels.copy(), "recommended": labels.copy()}
    answers["recommended"][:8] = swapped[:8]  # s1: one model alone misses both signs: not rejected
    assert rejected.rejected_groups(clips, answers) == []
    for name in answers:
        answers[name][:8] = swapped[:8]  # every model takes s1's a for b and their b for a
    answers["linear"][8:10] = "b"  # s2's a: half right for the linear model: not rejected
    groups = rejected.rejected_groups(clips, answers)
    assert [(g["signer"], g["sign"], g["taken_for"]) for g in groups] == [("s1", "a", "b"), ("s1", "b", "a")]
    assert rejected.swapped_pairs(groups) == [("s1", "a", "b")]
