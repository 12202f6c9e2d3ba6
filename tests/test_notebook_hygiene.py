"""The notebooks are committed with outputs cleared, numbered, and opening the way every course notebook
does."""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_seven_numbered_notebooks():
    names = [p.name[:3] for p in NOTEBOOKS]
    assert names == ["01_", "02_", "03_", "04_", "05_", "06_", "07_"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, c in enumerate(notebook.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_title_and_setup(path):
    notebook = nbformat.read(path, as_version=4)
    first, second = notebook.cells[0], notebook.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "first cell: a title"
    assert "learn" in first.source, "first cell says what the reader will learn"
    assert second.cell_type == "code" and "course_settings()" in second.source, "second cell: the setup"
    assert "print_versions" in second.source


# ----------------------------------------------------------------------------- no download unless DATASET
# asks
KNOWN_DOWNLOADS = ("asl", "ucf11")


def _python_source(cell_source: str) -> str:
    """A code cell as plain Python (IPython magics and ! lines turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def _names_allowed_by(test) -> set[str] | None:
    """Dataset names an `if` test lets through when it compares something called *dataset* (== or in)."""
    import ast

    if not isinstance(test, ast.Compare) or "dataset" not in ast.unparse(test.left).lower():
        return None
    if len(test.ops) != 1 or not isinstance(test.ops[0], (ast.Eq, ast.In)):
        return None
    try:
        allowed = ast.literal_eval(test.comparators[0])
    except ValueError:
        return None
    return {allowed} if isinstance(allowed, str) else set(allowed)


def unguarded_downloads(cell_source: str) -> list[str]:
    """Download calls (any function whose name contains 'download', or !wget/!curl/!kaggle) not inside the
    body of an `if` on the dataset setting that names exactly the dataset being downloaded."""
    import ast

    python = _python_source(cell_source)
    problems = [
        line.strip()
        for line in python.splitlines()
        if "get_ipython().system(" in line and any(tool in line for tool in ("wget", "curl", "kaggle"))
    ]

    def visit(node, allowed: set[str] | None) -> None:
        if isinstance(node, ast.If):
            names = _names_allowed_by(node.test)
            visit(node.test, allowed)
            for child in node.body:
                visit(child, names if names is not None else allowed)
            for child in node.orelse:  # the else branch is where the dataset was NOT named
                visit(child, allowed)
            return
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if "download" in func.lower():
                wanted = None
                if node.args and isinstance(node.args[0], ast.Constant):
                    wanted = {node.args[0].value}
                ok = (
                    allowed is not None
                    and allowed <= set(KNOWN_DOWNLOADS)
                    and (wanted is None or wanted <= allowed)
                )
                if not ok:
                    problems.append(ast.unparse(node))
        for child in ast.iter_child_nodes(node):
            visit(child, allowed)

    visit(ast.parse(python), None)
    return problems


def test_download_guard_catches_the_old_cell_and_passes_the_fixed_one():
    old = ('if settings.dataset in ("asl", "ucf11"):\n    source = datasets.download(settings.dataset)\n'
           'else:\n    try:\n        datasets.download("asl")\n    except datasets.DownloadError as error:\n'
           '        print(error)\n')
    assert unguarded_downloads(old) == ["datasets.download('asl')"]
    assert unguarded_downloads('datasets.download("asl")')
    assert unguarded_downloads('if settings.dataset == "ucf11":\n    datasets.download("asl")')
    assert unguarded_downloads('if settings.dataset in ("asl", "synthetic"):\n    '
                               'datasets.download(settings.dataset)')
    assert unguarded_downloads("!wget http://example.org/ucf11.zip")
    assert unguarded_downloads("import kagglehub\nkagglehub.dataset_download('x/y')")
    assert not unguarded_downloads('if settings.dataset in ("asl", "ucf11"):\n    '
                                   'datasets.download(settings.dataset)')
    assert not unguarded_downloads('if settings.dataset == "asl":\n    datasets.download("asl")')


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_download_unless_dataset_names_it(path):
    notebook = nbformat.read(path, as_version=4)
    found = {
        cell.get("id"): unguarded_downloads(cell.source)
        for cell in notebook.cells
        if cell.cell_type == "code"
    }
    found = {cell_id: calls for cell_id, calls in found.items() if calls}
    assert not found, (f"{path.name}: cells {found} download without `if settings.dataset ...` naming that "
                       f"dataset; a download must happen only when DATASET asks for it")


# ----------------------------------------------------------------------------- the sections of a textbook
# chapter One link per reference every reader should find somewhere in the course.
COURSE_REFERENCES = {
    "the original repository": "github.com/EashanKaushik/action-rekognition-CNN-LSTM",
    "Hochreiter & Schmidhuber 1997": "10.1162/neco.1997.9.8.1735",
    "Shi et al. 2015": "arxiv.org/abs/1506.04214",
    "MediaPipe Holistic": "mediapipe-holistic-simultaneous-face",
    "UCF11 (Liu, Luo & Shah 2009)": "crcv.ucf.edu/data/UCF_YouTube_Action",
    "the Kaggle ASL dataset": "kaggle.com/datasets/eashankaushik/americansignlanguageactionrekognition",
}


def _markdown(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_has_goals_time_summary_exercises_references(path):
    import re

    notebook = nbformat.read(path, as_version=4)
    first, markdown = notebook.cells[0].source, _markdown(notebook)
    assert "**Learning goals.**" in first and re.search(r"^\s*- ", first,
                                                        re.M), f"{path.name}: goals at the top"
    assert re.search(r"\*\*Time\.\*\* About \d+ minutes to read",
                     first), f"{path.name}: a time estimate at the top"
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    for section in ("## Summary", "## Exercises", "## References"):
        assert section in headings, f"{path.name}: no '{section}' section"
    assert headings.index("## Summary") < headings.index("## Exercises") < headings.index("## References")
    exercises = next(text for text in markdown if text.startswith("## Exercises"))
    questions = re.findall(r"^\*\*\d+\.\*\* ", exercises, re.M)
    assert 3 <= len(questions) <= 5, f"{path.name}: {len(questions)} exercises, want 3-5"
    assert exercises.count("<details><summary>Solution</summary>") == len(questions), (
        "one collapsed solution each"
    )
    assert exercises.count("<details>") == exercises.count("</details>")
    references = next(text for text in markdown if text.startswith("## References"))
    assert len(re.findall(r"\]\((https?://[^)\s]+)\)",
                          references)) >= 2, f"{path.name}: references with links"
    assert COURSE_REFERENCES["the original repository"] in references


def test_course_cites_every_core_reference():
    text = "\n".join(source for path in NOTEBOOKS for source in _markdown(nbformat.read(path, as_version=4)))
    missing = [name for name, link in COURSE_REFERENCES.items() if link not in text]
    assert not missing, f"no notebook links {missing}"


# ----------------------------------------------------------------------------- claims that were wrong once
def _notebook_text(name: str) -> str:
    path = next(p for p in NOTEBOOKS if p.name.startswith(name))
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


@pytest.mark.parametrize("name, wrong", [
    ("04_", "frames at once\n(one big convolution"),  # the ConvLSTM convolves per step
    ("04_", "(only faster)"),  # benchmarks/README.md: on par in training
    ("01_", "60/20/20, as the original"),  # the original: 20% test, then 20% of the rest, unstratified
    ("05_", "about\n7.2 million parameters"),  # the code prints the count
    ("03_", "Training the faithful model"),  # small is not the original's configuration
    ("05_", "Training: faithful"),
    ("06_", 'title="test accuracy on unseen signers"'),  # only true for a split by signer
])
def test_corrected_claims_do_not_return(name, wrong):
    assert wrong not in _notebook_text(name)


def test_defect_table_has_eight_defects_each_shown_by_a_section():
    import re

    text = _notebook_text("05_")
    rows = re.findall(r"^\| (\d) \| .* \| ([^|]+) \|$", text, re.M)
    assert [number for number, _ in rows] == [str(n) for n in range(1, 9)], "defects 1-8, in order"
    headings = set(re.findall(r"^### (2[a-z])\. ", text, re.M))
    for number, shown_in in rows:
        sections = set(re.findall(r"\b2[a-z]\b", shown_in))
        assert sections or "notebook 02" in shown_in, f"defect {number}: no cell shows it"
        assert sections <= headings, f"defect {number} points to missing sections {sections - headings}"
    assert "114" in text and "73" in text, "defect 2 names the epochs the original kept"
    assert "peephole" in _notebook_text("04_").lower() and "1506.04214" in _notebook_text("04_")


# ----------------------------------------------------------------------------- cross-validation by signer
def _code_cells(name: str) -> list[str]:
    path = next(p for p in NOTEBOOKS if p.name.startswith(name))
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def _assigned(sources: list[str], name: str):
    """The expression assigned to `name` at the top level of some code cell (ast node), or None."""
    import ast

    for source in sources:
        for node in ast.parse(_python_source(source)).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return node.value
    return None


def test_notebook_03_cross_validates_the_lstm_and_the_linear_baseline_by_signer():
    import ast
    from types import SimpleNamespace

    code = _code_cells("03_")
    models = _assigned(code, "CV_MODELS")
    assert models is not None and {"lstm",
                                   "linear"} <= set(ast.literal_eval(models)), "CV_MODELS: lstm and linear"
    folds = _assigned(code, "FOLDS")
    assert folds is not None, "notebook 03 sets FOLDS"
    expression = compile(ast.Expression(folds), "FOLDS", "eval")
    assert eval(expression,
                {"settings": SimpleNamespace(fast=False)}) == 5, "5 folds of 2 signers on the default"
    assert eval(expression, {"settings": SimpleNamespace(fast=True)}) == 2, "2 folds with FAST=1 (4 signers)"
    runs = [source for source in code if "crossval.run(" in source]
    assert runs and "for model_name in CV_MODELS" in runs[0] and "folds=FOLDS" in runs[0]
    assert any("evaluation.results_table(" in source and "num_classes=" in source for source in code), \
        "notebook 03 compares the cross-validated models with chance"
    headings = [
        line
        for text in _markdown(
            nbformat.read(next(p for p in NOTEBOOKS if p.name.startswith("03_")), as_version=4)
        )
        for line in text.splitlines()
    ]
    assert "## 5. Cross-validation by signer" in headings


def test_notebook_06_reads_the_crossval_results():
    code = "\n".join(_code_cells("06_"))
    assert "evaluation.find_crossval_dirs(" in code and "evaluation.results_table(" in code


# ----------------------------------------------------------------------------- chapters 04-06: results read
CHAPTERS = ("04_", "05_", "06_")
MAX_CHAPTER_WORDS = 1800
# Facts of the original project a chapter may quote (its reported accuracies), not results of this course.
QUOTED_FIGURES = {"0.901", "0.777"}


def _chapter_markdown(name: str) -> list[str]:
    path = next(p for p in NOTEBOOKS if p.name.startswith(name))
    return _markdown(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_fits_its_word_budget(name):
    words = sum(len(text.split()) for text in _chapter_markdown(name))
    assert words <= MAX_CHAPTER_WORDS, f"{name}: {words} markdown words, over {MAX_CHAPTER_WORDS}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_text_types_no_result_figures(name):
    """Code cells print results from the files a command wrote; the text quotes only the original's."""
    import re

    prose = [text for text in _chapter_markdown(name) if not text.startswith("## References")]
    figures = {figure for text in prose for figure in re.findall(r"(?<![\w.])\d+\.\d+", text)}
    typed = sorted(figures - QUOTED_FIGURES)
    assert not typed, f"{name}: figures typed into the text: {typed}"
    times = [line for text in prose for line in text.splitlines()
             if re.search(r"minutes? to run|\bs per epoch", line)]
    assert not times, f"{name}: run times are measured (the README's chapter table), not typed: {times}"


@pytest.mark.parametrize("name, wrong", [
    ("04_", "8 filters"),  # the recommended ConvLSTM is read from utils/models/config.py
    ("05_", "0.960"),  # rows of a three-branch study quoted for the two-branch model
    ("05_", "equal weights 0.970"),
    ("06_", "has no option to change"),  # train --frames sets T
    ("06_", "cost them a clip"),  # compare.json's folds show what fusion gains and loses
])
def test_chapter_claims_corrected(name, wrong):
    assert wrong not in _notebook_text(name)


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_names_the_original_configuration_original(name):
    import re

    text = _notebook_text(name)
    assert not re.search(r"`seed`|[\"']seed[\"']", text), f"{name}: the configuration is called `original`"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_reads_the_same_people_comparison(name):
    code = "\n".join(_code_cells(name))
    assert 'report.table("same-people")' in code, f"{name}: show benchmarks/compare.json's table, not a copy"


def test_notebook_06_prints_every_runs_test_signers():
    code = "\n".join(_code_cells("06_"))
    assert '.get("test_groups")' in code and "nunique() == 1" in code
    assert "--frames 20" in _notebook_text("06_"), "the UCF11 recipe sets T with train --frames"


def test_notebook_07_records_with_a_stand_in_camera_and_cross_validates_by_signer():
    code = "\n".join(_code_cells("07_"))
    assert '"record"' in code and '"--yes"' in code and '"--camera"' in code, "records with record --yes"
    assert "crossval.run(" in code and 'folds="loso"' in code, "cross-validates by signer"
    assert "settings.fast" in code and "settings.epochs" in code, "FAST=1 makes it small"
    words = sum(len(text.split()) for text in _markdown(nbformat.read(
        next(p for p in NOTEBOOKS if p.name.startswith("07_")), as_version=4)))
    assert words <= 1200, f"notebook 07 has {words} words of text"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_utils_is_imported_before_tensorflow(path):
    """Importing utils first keeps TensorFlow's start-up lines out of the chapter's output
    (utils.config.quiet_tensorflow); a chapter that imports keras or tensorflow before it shows them."""
    import re

    code = "\n".join(_code_cells(path.name[:3]))
    first_utils = re.search(r"^(from|import) utils\b", code, re.M)
    first_framework = re.search(r"^(import|from) (keras|tensorflow)\b", code, re.M)
    assert first_framework is None or (first_utils and first_utils.start() < first_framework.start())
