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
