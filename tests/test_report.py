"""Generated tables: the README and docs/ say what the results files say, and a table edited by hand is
caught."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from utils import cli
from utils.errors import ConfigError
from utils.evaluation import report


def _compare_json(folder: Path) -> None:
    folds = [{"test_groups": [f"s{2 * i:02d}", f"s{2 * i + 1:02d}"], "accuracy": 0.9 + 0.01 * i, "n": 80}
             for i in range(5)]
    entry = {"model": "lstm", "config": "recommended", "folds": 5, "macro_f1": {"mean": 0.9},
             "accuracy": {"mean": 0.92, "ci95": [0.89, 0.95], "n": 5}, "per_fold": folds,
             "train_seconds": [10.0] * 5}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compare.json").write_text(json.dumps({
        "command": "python benchmarks/compare.py", "commit": "abc1234", "machine": "x86_64, 2 cores",
        "features": "f.npz", "num_folds": 5, "seed": 0, "num_classes": 10, "chance": 0.1,
        "models": {"lstm": entry,
                   "linear": {**entry, "model": "linear", "accuracy": {"mean": 0.8, "ci95": None}}},
    }))


def _project(tmp_path: Path) -> Path:
    _compare_json(tmp_path / "benchmarks")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Course\n\n<!-- table: same-people -->\nold\n<!-- end table "
                                        "-->\n\nText.\n")
    (tmp_path / "docs" / "results.md").write_text("<!-- table: same-people-signers -->\n<!-- end table -->\n")
    return tmp_path


def test_tables_are_written_from_the_results_file(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert len(report.differences(project)) == 2
    assert len(report.write(project)) == 2
    assert report.differences(project) == []
    readme = (project / "README.md").read_text()
    assert "| keypoint model (`--model lstm`) | 0.920 [0.89, 0.95] | 0.900 |" in readme
    assert "| linear baseline (`--model linear`) | 0.800 | 0.900 |" in readme
    assert readme.index("linear baseline") < readme.index("keypoint model")  # baselines first
    assert readme.endswith("<!-- end table -->\n\nText.\n")
    assert "s00, s01; s02, s03" in (project / "docs" / "results.md").read_text()


def test_a_table_edited_by_hand_is_caught(tmp_path: Path) -> None:
    project = _project(tmp_path)
    report.write(project)
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("0.920 [0.89, 0.95]", "0.950 [0.89, 0.95]"))
    assert report.differences(project) == ["README.md: table same-people"]


def test_a_results_file_changed_without_the_tables_is_caught(tmp_path: Path) -> None:
    project = _project(tmp_path)
    report.write(project)
    data = json.loads((project / "benchmarks" / "compare.json").read_text())
    data["models"]["lstm"]["accuracy"]["mean"] = 0.93
    (project / "benchmarks" / "compare.json").write_text(json.dumps(data))
    assert report.differences(project) == ["README.md: table same-people"]


def test_an_unknown_table_name_is_an_error(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "docs" / "more.md").write_text("<!-- table: nonsense -->\n<!-- end table -->\n")
    with pytest.raises(ConfigError, match="no generated table called 'nonsense'"):
        report.differences(project)


def test_the_course_tables_match_their_results_files(capsys: pytest.CaptureFixture) -> None:
    """What `make test` checks on the repository itself: every generated table is what its file says."""
    assert cli.main(["report", "--check"]) == 0, capsys.readouterr().out


def _fold(recall_of: dict[str, tuple[int, int, int]], accuracy: float) -> dict:
    """One fold of benchmarks/real_signers.json: per sign (test clips, right answers, training signers)."""
    per_sign = {sign: {"n": n, "correct": right, "train_signers": signers, "test_signers": 1 if n else 0}
                for sign, (n, right, signers) in recall_of.items()}
    return {"accuracy": accuracy, "per_sign": per_sign}


def test_the_55_signer_tables_judge_a_sign_only_where_enough_signers_trained_it(tmp_path: Path) -> None:
    folds = [_fold({"hello": (10, 9, 30), "me": (10, 0, 1)}, 0.45),
             _fold({"hello": (10, 7, 30), "me": (10, 6, 3)}, 0.65)]
    entry = {"folds": folds, "mean": 0.55, "interval": [0.1, 1.0], "mean_seen": 0.6,
             "interval_seen": [0.2, 1.0], "min": 0.45}
    results = {"chance": {"all": {**entry, "mean": 0.5, "mean_seen": 0.5, "min": 0.5}},
               "linear": {"all": entry},
               "conv_gru, hand angles, balanced classes, label smoothing x3": {"all": entry}}
    (tmp_path / "real_signers.json").write_text(json.dumps({"results": results}))
    signs = report.table("all-signers-signs", tmp_path)
    assert "| hello | 31 | 0.90 (30) · 0.70 (30) | 0.80 |" in signs
    # the fold with one training signer is not judged
    assert "| me | 2 | 0.00 (1) · 0.60 (3) | 0.60 |" in signs
    overview = report.table("all-signers", tmp_path)
    linear = "| linear baseline (`--model linear`) | 0.550 [0.10, 1.00] | 0.600 [0.20, 1.00] | 0.450 | – |"
    assert linear in overview
    assert "n = 2 folds" in overview
