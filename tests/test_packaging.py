"""Installable where users are: dependency ranges that hold the exact pins, the project folder outside a
checkout, --version and the program name, and (slow) a real wheel installed into a scratch venv and run from a
tmp folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _pins() -> dict[str, str]:
    """name -> exact version from requirements.txt."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_every_pin_is_declared_and_inside_its_range():
    from packaging.requirements import Requirement

    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.11,<3.13"
    declared = [Requirement(text) for text in project["dependencies"]]
    declared += [Requirement(text) for extra in ("lab",
                                                 "dev") for text in project["optional-dependencies"][extra]]
    pins = _pins()
    by_name = {req.name.lower(): req for req in declared}
    assert set(pins) == set(by_name), set(pins) ^ set(by_name)
    for name, version in pins.items():
        assert by_name[name].specifier.contains(version), (name, version, str(by_name[name].specifier))
    gpu = [Requirement(text) for text in project["optional-dependencies"]["gpu"]]
    assert len(gpu) == 1 and gpu[0].name == "tensorflow" and gpu[0].extras == {"and-cuda"}
    assert str(gpu[0].specifier) == f"=={pins['tensorflow']}"


def test_license_file_matches_the_metadata():
    assert _pyproject()["project"]["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_project_folder_is_the_checkout_else_course_home_else_cwd(tmp_path):
    from utils import paths

    checkout = tmp_path / "repo"
    (checkout / "utils").mkdir(parents=True)
    (checkout / "utils" / "__init__.py").touch()
    (checkout / "pyproject.toml").touch()
    installed = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "utils"
    installed.mkdir(parents=True)
    # even a stray pyproject.toml there does not make it a checkout
    (installed.parent / "pyproject.toml").touch()
    (installed / "__init__.py").touch()
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    assert paths.project_dir(checkout / "utils", {"COURSE_HOME": str(home)}, cwd) == checkout
    assert paths.project_dir(installed, {"COURSE_HOME": str(home)}, cwd) == home.resolve()
    assert paths.project_dir(installed, {}, cwd) == cwd.resolve()
    assert paths.PROJECT_DIR == REPO  # these tests run from the checkout


def test_course_explains_where_the_notebooks_are(tmp_path):
    from utils import course
    from utils.errors import CourseError

    with pytest.raises(CourseError, match="COURSE_HOME"):
        course.course_notebooks(tmp_path)


def test_version_and_program_name(capsys):
    import utils
    from utils import cli

    assert cli.program_name("/venv/bin/sign-course") == "sign-course"
    assert cli.program_name(str(REPO / "utils" / "__main__.py")) == "python -m utils"
    for prog in ("sign-course", "python -m utils"):
        with pytest.raises(SystemExit) as stop:
            cli.build_parser(prog).parse_args(["--version"])
        assert stop.value.code == 0
        assert capsys.readouterr().out.strip() == f"{prog} {utils.__version__}"
    assert cli.build_parser("sign-course").format_usage().startswith("usage: sign-course ")


def _scratch_venv(folder: Path) -> Path:
    """A venv without pip downloads: this environment's packages are visible through a .pth line (TensorFlow,
    MediaPipe, ...), but not its editable install of this repository. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(site) / "course_deps.pth").write_text("\n".join(ours) + "\n")
    return python


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    """pip wheel + a non-editable install into a scratch venv; the commands work from a tmp folder and write
    there, never into site-packages."""
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(REPO / "utils", source / "utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(wheels), str(source)], check=True, capture_output=True, text=True, timeout=600)
    wheel = next(wheels.glob("skeleton_sign_course-*.whl"))
    python = _scratch_venv(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=600)
    site = Path(subprocess.run([str(python), "-c",
                                "import utils, pathlib; print(pathlib.Path(utils.__file__).parent.parent)"],
                               check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip())
    assert site.name == "site-packages" and site.is_relative_to(tmp_path / "venv"), site
    before = {p.name for p in site.iterdir()}

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k,
           v in os.environ.items() if not k.startswith("COURSE_") and k not in ("PYTHONPATH", "FAST")}
    script = tmp_path / "venv" / "bin" / "sign-course"
    assert "usage: sign-course" in _run([str(script), "--help"], work, env).stdout
    assert _run([str(script), "--version"], work, env).stdout.strip().startswith("sign-course ")
    out = work / "synthetic"
    _run([str(python), "-m", "utils", "data", "synthetic", "--clips-per-class", "1", "--signers", "2",
          "--workers", "1", "--out", str(out)], work, env)
    assert len(list(out.rglob("*.mp4"))) >= 2
    where = _run([str(python), "-c",
                  "from utils import paths; print(paths.PROJECT_DIR); print(paths.RESULTS_DIR)"],
                 work, env).stdout.split()
    assert where == [str(work.resolve()), str(work.resolve() / "results")]
    missing = subprocess.run([str(script), "course", "--only", "01"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600)
    assert missing.returncode == 2 and "COURSE_HOME" in missing.stderr, missing.stderr[-2000:]
    assert {p.name for p in site.iterdir()} == before
    assert not any((site / name).exists() for name in ("data", "results", "notebooks"))
