"""The one report writer: pages escape what they show, embed their plot, and land where runs, sweeps and the
monitor expect them."""

from __future__ import annotations

from pathlib import Path

from rscale.reports import Page, code, table, text, write_report, write_run_report
from rscale.stages.artifacts import RunOutcome


def test_a_page_escapes_text_and_keeps_markup_it_was_given(tmp_path: Path) -> None:
    page = Page("a <b> & c").add(
        text("p", "lift < 0 & ", code("<model>")),
        table(["metric", "value"], [["auc<", "0.5"], ["rmse", "1.0"]], row_classes=["crossed", "ok"]),
    )
    paths = write_report(tmp_path / "out", "results", page)
    assert list(paths) == ["html"]  # no plot, no PNG
    html = paths["html"].read_text()
    assert "<title>a &lt;b&gt; &amp; c</title>" in html
    assert "<p>lift &lt; 0 &amp; <code>&lt;model&gt;</code></p>" in html
    assert html.count("<tr") == 3 and '<tr class="crossed"><td>auc&lt;</td>' in html
    assert "data:image/png" not in html


def test_the_run_report_embeds_curves_and_names_the_gate_and_endpoint(tmp_path: Path) -> None:
    outcome = RunOutcome(
        name="conversion", plan_hash="abc123", run_id="r", run_name="conversion-abc", seconds=3.25, fingerprint="f",
        metrics={"auc": 0.81}, baseline="gbdt", baseline_metrics={"auc": 0.74},
        gate={"passed": True, "reason": "auc 0.81 beats gbdt by 0.07", "metric": "auc", "model_value": 0.81,
              "baseline_value": 0.74, "required_value": 0.75},
        training={"package_dir": "package", "history": [{"epoch": 0, "train_loss": 0.7, "val_loss": 0.6, "val_auc": 0.7},
                                                        {"epoch": 1, "train_loss": 0.5, "val_loss": 0.5, "val_auc": 0.8}]},
        deployment={"deployed": True, "reason": "gate passed",
                    "endpoint": {"name": "conversion", "tier": "local", "url": "http://127.0.0.1:8080"}},
    )
    path = write_run_report(outcome, tmp_path)
    html = path.read_text()
    assert path == tmp_path / "report.html"
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in html and "<td>0.8100</td><td>0.7400</td>" in html
    assert "auc 0.81 beats gbdt by 0.07" in html and "<code>http://127.0.0.1:8080</code>" in html
