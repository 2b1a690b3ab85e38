"""`rs validate` end to end: output, exit codes, and that it imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rscale.cli import spec as _spec_commands  # noqa: F401  (registers validate and schema)
from rscale.cli.app import app

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "zenml", "lightning", "pytorch_lightning", "mlflow", "boto3", "botocore", "snowflake.connector",
         "snowflake.snowpark", "neptune", "duckdb", "hydra")


def test_validate_ok_prints_name_and_plan_hash(project: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "specs/recs.yaml", "--offline"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: recs (plan ") and "--offline" in result.output


def test_validate_sweep_lists_every_member(project: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "specs/recs.yaml", "train.lr=0.1,0.2", "--offline"])
    assert result.exit_code == 0, result.output
    assert "2 sweep members" in result.output


def test_validate_lists_every_mistake_with_location_path_and_fix(project: Path) -> None:
    spec = project / "specs" / "conversion.yaml"
    spec.write_text(
        spec.read_text().replace("  lr: 0.003", "  lrr: 0.003").replace("type: tabular", "type: tabulr")
        .replace("[auc, accuracy]", "[auc, acuracy]")
    )
    lines = spec.read_text().splitlines()

    def at(needle: str) -> str:  # file:line:col of the first line holding `needle`, at its first non-blank
        number = next(i for i, line in enumerate(lines, 1) if needle in line)
        line = lines[number - 1]
        column = line.index(needle.split(":")[0].strip("[ ")) + 1 if needle.startswith("[") else len(line) - len(line.lstrip()) + 1
        return f"specs/conversion.yaml:{number}:{column}"

    result = CliRunner().invoke(app, ["validate", "specs/conversion.yaml", "train.batch_size=big", "--offline"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())  # the console may wrap long lines
    metrics_line = at("[auc, acuracy]").rsplit(":", 1)[0]
    metrics_column = lines[int(metrics_line.rsplit(":", 1)[1]) - 1].index("acuracy") + 1
    for where, path, fix in [
        (at("type: tabulr"), "model.type", "did you mean `tabular`?"),
        (at("lrr: 0.003"), "train.lrr", "did you mean `lr`?"),
        (f"{metrics_line}:{metrics_column}", "evaluate.metrics[1]", "did you mean `accuracy`?"),
        (at("batch_size:"), "train.batch_size", "from override: train.batch_size=big"),
    ]:
        assert f"{where}: error at `{path}`" in text and fix in text
    assert "4 errors in the spec" in text
    assert "Traceback" not in result.output


def test_validate_and_its_imports_stay_light(project: Path) -> None:
    code = (
        "import sys, json\n"
        "import rscale.cli.main\n"
        "from rscale.cli import spec\n"
        "from rscale.cli.app import app\n"
        "try:\n"
        "    app(['validate', 'specs/recs.yaml', '--offline'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ok: recs" in run.stdout
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
