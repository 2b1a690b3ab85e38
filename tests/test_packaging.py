"""Every package folder under src/ ships: a wheel holds only the packages pyproject lists, and mypy checks them."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_for_setuptools_and_mypy():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = {
        ".".join(("rscale", *init.parent.relative_to(REPO / "src").parts))
        for init in (REPO / "src").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert folders == set(config["tool"]["setuptools"]["packages"])
    checked = config["tool"]["mypy"]["packages"]  # mypy checks a listed package's subpackages too
    assert all(any(folder == p or folder.startswith(p + ".") for p in checked) for folder in folders)
