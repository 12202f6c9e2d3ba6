"""Real signers (../shared/real/mp_data_signers): the default keypoint model, cross-validated by signer.

Skipped when the real recordings are absent. The recordings are expanded into a temporary folder (as users
have them: MP_Data folders and a manifest.csv naming each sequence's signer), extracted through the manifest,
and one network of the default ``lstm`` configuration is cross-validated leaving one signer out (four folds,
three training signers each). The bar: a mean accuracy of 0.70 over the folds, counting the clips of classes
that no training signer shows apart (luja_manandhar's ``help``: nobody else signs it).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MEAN_ACCURACY_BAR = 0.70


@pytest.mark.slow
@pytest.mark.real
def test_default_lstm_recognises_unseen_real_signers(tmp_path: Path, real_dir: Path, monkeypatch) -> None:
    from utils import models, paths
    from utils.data.features import extract_features, load_features
    from utils.evaluation import crossval

    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    expand = real_dir / "mp_data_signers" / "expand.py"
    subprocess.run([sys.executable, str(expand), str(tmp_path / "four")], check=True, capture_output=True)
    report = extract_features(tmp_path / "four", tmp_path / "four.npz", num_frames=30, progress=False)
    features = load_features(report.path)
    assert sorted(set(features.groups)) == ["ismokedata", "jeet10", "luja_manandhar", "sarmskunatham"]

    # one network of the default (its seed ensemble would triple this test's training): member 1 of the
    # ensemble is this very network (tests/test_ensemble.py); benchmarks/ensemble.py cross-validates the whole
    # ensemble
    one_network = models.get_config("lstm").replace(ensemble=1)
    summary = crossval.run(report.path, "lstm", one_network, out_dir=tmp_path / "cv", folds="loso", seed=0,
                           progress=False)
    per_fold = {f["test_groups"][0]: round(f["accuracy_seen_classes"], 3) for f in summary["per_fold"]}
    assert summary["per_fold"][2]["unseen_classes"] == ["help"]  # luja_manandhar's help: no one else signs it
    mean = summary["accuracy_seen_classes"]["mean"]
    assert mean >= MEAN_ACCURACY_BAR, (
        f"mean accuracy {mean:.3f} over unseen signers (seen classes) {per_fold}"
    )
