"""The `armillary` namespace: installed from the repo root without shadowing the standard library."""

import subprocess
import sys
import tomllib

from conftest import REPO_ROOT

CODE_FOLDERS = ("core", "platform", "algorithms", "envs", "jobs")


def test_import_platform_from_repo_root_is_the_standard_library():
    out = subprocess.run([sys.executable, "-c", "import platform; print(platform.system())"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("Linux", "Darwin", "Windows")


def test_top_level_folders_are_not_regular_packages():
    # An __init__.py in platform/ would shadow the standard library's `platform` from the repo root.
    for folder in CODE_FOLDERS:
        assert not (REPO_ROOT / folder / "__init__.py").exists(), folder


def test_armillary_subpackages_import_from_anywhere(tmp_path):
    code = "import armillary.platform.spec, armillary.algorithms.registry, armillary.envs.registry, armillary.jobs.run_experiment; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_code_folder_is_packaged_for_the_wheel():
    """A wheel ships only listed packages: every folder holding Python must be in pyproject.toml."""
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    for top in CODE_FOLDERS:
        for folder in [REPO_ROOT / top, *(p for p in (REPO_ROOT / top).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or not any(folder.glob("*.py")):
                continue
            name = "armillary." + ".".join(folder.relative_to(REPO_ROOT).parts)
            assert name in listed, f"{name} is missing from [tool.setuptools].packages in pyproject.toml"
