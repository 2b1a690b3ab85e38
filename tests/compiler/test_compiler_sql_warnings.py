"""A construct sqlglot cannot carry over is a compile warning at the spec line that holds it."""

from __future__ import annotations

from pathlib import Path

from rscale.compiler.compilation import compile_spec


def test_warning_points_at_the_query_line_in_the_spec(project: Path) -> None:
    spec = project / "specs" / "conversion.yaml"
    text = spec.read_text().replace(
        "           MIN(event_time) AS session_start\n",
        "           MIN(event_time) AS session_start,\n           TO_VARCHAR(MIN(event_time), 'YYYY-MM') AS month\n",
    )
    spec.write_text(text)
    compiled = compile_spec("specs/conversion.yaml", [], offline=True)
    (warning,) = [w for w in compiled.warnings if "TO_VARCHAR" in w.message.upper() or "format" in w.message]
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "TO_VARCHAR" in row)
    assert warning.severity == "warning"
    assert warning.location is not None and warning.location.line == line
    assert warning.location.column == text.splitlines()[line - 1].index("TO_VARCHAR") + 1
