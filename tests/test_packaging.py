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
    assert folders - {"rscale", "rscale.compiler.spec"} == set(config["tool"]["mypy"]["packages"])
