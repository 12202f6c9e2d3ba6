"""benchmarks/label_issues.py: which clips cleanlab may flag, and how they are listed per signer and sign."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cleanlab")


def _label_issues():
    """benchmarks/label_issues.py as a module (it imports benchmarks/real_signers.py as its neighbour)."""
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("label_issues", folder / "label_issues.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("label_issues", module)
    spec.loader.exec_module(module)
    return module


def test_a_clip_the_models_contradict_is_flagged_and_an_unjudged_one_never():
    issues = _label_issues()
    labels = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 5)
    signers = np.array([f"s{i % 5}" for i in range(45)])
    clips = issues.study.ClipSet(np.zeros((45, 2, 3)), labels, signers)
    probabilities = np.zeros((45, 3))
    probabilities[:20, 0], probabilities[20:40, 1] = 0.95, 0.95
    probabilities[:20, 1], probabilities[20:40, 0] = 0.05, 0.05
    probabilities[3] = [0.02, 0.98, 0.0]  # labelled "a", every other signer's model says "b"
    judged = labels != "c"  # no other signer showed "c": its clips cannot be judged
    flagged = issues.label_issues(clips, (probabilities, judged), np.ones(45, bool))
    assert flagged[3] and not flagged[40:].any() and flagged.sum() <= 3
    listing = issues.per_signer_table(
        clips, flagged, np.array([f"{sign}/{i}" for i, sign in enumerate(labels)])
    )
    assert {"signer": "s3", "sign": "a", "clips": 4, "suspected": 1, "sequences": ["a/3"]} in listing
