"""The prediction log: one JSON line per request, one file per process, never failing a request."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from tiny_package import EXAMPLE, trained_package

from rscale.serving.server import PredictionLog, create_app


def _client(app):  # starlette's TestClient runs the lifespan, so the final flush happens on exit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        return TestClient(app)


def test_log_lines_are_written_at_shutdown_with_inputs_and_outputs(tmp_path: Path) -> None:
    app = create_app(trained_package(), log_dir=tmp_path / "predictions")
    with _client(app) as client:
        first = client.post("/invocations", json=EXAMPLE).json()
        second = client.post("/invocations", json={"instances": [EXAMPLE, dict(EXAMPLE, device="tablet")]}).json()
    (path,) = (tmp_path / "predictions").glob("*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [first["request_id"], second["request_id"]]
    assert [line["records"] for line in lines] == [1, 2]
    assert [line["outputs"] for line in lines] == [first["predictions"], second["predictions"]]
    assert lines[1]["inputs"][1]["device"] == "tablet"
    # each line carries its request's latency, which `rs monitor` reports as p50 / p99
    assert all(isinstance(line["latency_ms"], float) and line["latency_ms"] > 0 for line in lines)


def test_a_pretty_printed_record_is_logged_on_one_line_as_sent(tmp_path: Path) -> None:
    app = create_app(trained_package(), log_dir=tmp_path)
    body = json.dumps(dict(EXAMPLE, session_id="s-1"), indent=2).replace("\n", "\r\n")
    with _client(app) as client:
        response = client.post("/invocations", content=body.encode(), headers={"content-type": "application/json"})
    (path,) = tmp_path.glob("*.jsonl")
    (line,) = path.read_text().splitlines()
    logged = json.loads(line)
    assert logged["inputs"] == [dict(EXAMPLE, session_id="s-1")]
    assert logged["outputs"] == response.json()["predictions"]


@pytest.mark.parametrize(
    "render",
    [
        lambda body: json.dumps(body, indent=2).replace("\n", "\r\n"),  # pretty-printed, Windows line ends
        lambda body: json.dumps(body, separators=(",", ":")),  # compact
        lambda body: ' \n{ "instances" :[ ' + " ,\t".join(json.dumps(r) for r in body["instances"]) + " ] } \n",
        lambda body: json.dumps({"instances": body["instances"], "extra": 1}),  # another key: decoded whole
    ],
)
def test_a_batch_is_logged_on_one_line_as_sent(tmp_path: Path, render) -> None:  # type: ignore[no-untyped-def]
    records = [dict(EXAMPLE, session_id=f"s-{i}", device="tablet" if i % 2 else "mobile") for i in range(3)]
    with _client(create_app(trained_package(), log_dir=tmp_path)) as client:
        response = client.post("/invocations", content=render({"instances": records}).encode(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    (path,) = tmp_path.glob("*.jsonl")
    (text,) = path.read_text().splitlines()
    line = json.loads(text)
    assert line["inputs"] == records and line["records"] == 3
    assert line["outputs"] == response.json()["predictions"]


@pytest.mark.parametrize(
    "body",
    [
        '{"instances": [{"a": 1}], "instances": [' + json.dumps(EXAMPLE) + "]}",  # a repeated key: the last wins
        '{"instances": []}',
        '{"instances": [{"n_views": NaN}]}',
        '{"instances": [1, 2]}',
        '{"instances": [{"n_views": 1}]} {"instances": []}',
    ],
)
def test_bodies_the_array_slice_cannot_take_are_answered_as_without_a_log(tmp_path: Path, body: str) -> None:
    """The log takes a batch's inputs from the body's array text only where that text is exactly the
    decoded records; any other body gets the answer it gets with the log off, and a valid line if any."""
    answers = []
    for log_dir in (tmp_path / "on", None):
        with _client(create_app(trained_package(), log_dir=log_dir)) as client:
            response = client.post("/invocations", content=body.encode(), headers={"content-type": "application/json"})
            answers.append((response.status_code, response.json().get("predictions"), response.json().get("error")))
    assert answers[0] == answers[1]
    assert answers[0][0] == (200 if body.startswith('{"instances": [{"a"') else 400)
    logged = [json.loads(text) for path in (tmp_path / "on").glob("*.jsonl") for text in path.read_text().splitlines()]
    assert [line["inputs"] for line in logged] == ([[EXAMPLE]] if answers[0][0] == 200 else [])


def test_request_headers_such_as_credentials_are_never_logged(tmp_path: Path) -> None:
    app = create_app(trained_package(), log_dir=tmp_path)
    with _client(app) as client:
        for body in (EXAMPLE, {"instances": [EXAMPLE] * 2}):
            headers = {"Authorization": "Bearer s3cret-token", "X-Api-Key": "s3cret-key", "X-Request-Id": "r-42"}
            assert client.post("/invocations", json=body, headers=headers).status_code == 200
    (path,) = tmp_path.glob("*.jsonl")
    text = path.read_text()
    assert "s3cret" not in text and [json.loads(line)["request_id"] for line in text.splitlines()] == ["r-42"] * 2


def test_rejected_requests_are_not_logged(tmp_path: Path) -> None:
    app = create_app(trained_package(), log_dir=tmp_path)
    with _client(app) as client:
        assert client.post("/invocations", json={"n_views": 1}).status_code == 422
    assert list(tmp_path.glob("*.jsonl")) == []


def test_an_unwritable_log_never_fails_a_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log folder should be")
    app = create_app(trained_package(), log_dir=blocker / "predictions")
    with _client(app) as client:
        for _ in range(3):
            assert client.post("/invocations", json=EXAMPLE).status_code == 200
        app.state.prediction_log.flush()
        assert client.post("/invocations", json=EXAMPLE).status_code == 200
    log: PredictionLog = app.state.prediction_log
    assert log.failures == 4 and log.written == 0
    assert capsys.readouterr().err.count("not written") == 1  # said once, not per request


def test_values_json_cannot_encode_are_logged_as_text_with_an_iso_utc_time(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "v1", "hash")
    log.record("r1", 1.25, [{"price": Decimal("1.50")}], [{"score": 0.5}])
    log.flush()
    line = json.loads(log.path.read_text())
    assert line["inputs"] == [{"price": "1.50"}] and line["outputs"] == [{"score": 0.5}]
    assert datetime.fromisoformat(line["ts"]) == datetime(1970, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)


def test_server_without_log_dir_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app(trained_package())
    with _client(app) as client:
        assert client.post("/invocations", json=EXAMPLE).status_code == 200
    assert app.state.prediction_log is None
    assert list(tmp_path.rglob("*.jsonl")) == []


def test_the_no_log_header_keeps_a_request_out_of_the_log(tmp_path: Path) -> None:
    app = create_app(trained_package(), log_dir=tmp_path)
    with _client(app) as client:
        skipped = client.post("/invocations", json=EXAMPLE, headers={"X-Rscale-No-Log": "1"}).json()
        kept = client.post("/invocations", json=EXAMPLE, headers={"X-Rscale-No-Log": "0"}).json()
        assert skipped["predictions"] == kept["predictions"]
    lines = [json.loads(line) for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [kept["request_id"]]


def test_files_rotate_by_size_and_sort_by_name_in_time_order(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "v1", "hash", max_file_bytes=50)  # smaller than one line: a file per flush
    for batch in range(5):
        log.record(f"r{batch}", 1.0 + batch, [{"x": batch}], [{"score": 0.5}])
        log.flush()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 5 and log.files == 4
    assert [json.loads(path.read_text())["request_id"] for path in files] == [f"r{batch}" for batch in range(5)]


def test_files_rotate_by_age(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, "v1", "hash", max_file_age_s=3600)
    for batch in range(3):
        log.record(f"r{batch}", 1.0, [{"x": batch}], [{"score": 0.5}])
        log.flush()
    assert len(list(tmp_path.glob("*.jsonl"))) == 1  # younger than an hour: one file
    log.max_file_age_s = 1e-9  # every file is now too old
    log.record("r3", 1.0, [{"x": 3}], [{"score": 0.5}])
    log.flush()
    newest = sorted(tmp_path.glob("*.jsonl"))[-1]
    assert [json.loads(line)["request_id"] for line in newest.read_text().splitlines()] == ["r3"]


def test_a_full_disk_never_fails_a_request_and_ping_reports_it(tmp_path: Path) -> None:
    """A real ENOSPC: the log file is a link to /dev/full, where every write fails with 'No space left'."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    app = create_app(trained_package(), log_dir=tmp_path)
    log: PredictionLog = app.state.prediction_log
    log.path.symlink_to("/dev/full")
    with _client(app) as client:
        assert client.get("/ping").content == b""
        for _ in range(3):
            assert client.post("/invocations", json=EXAMPLE).status_code == 200
        log.flush()
        ping = client.get("/ping")
        assert ping.status_code == 200
        report = ping.json()["prediction_log"]
        assert report["failures"] == 3 and "No space left" in report["last_error"]
        assert client.post("/invocations", json=EXAMPLE).status_code == 200


def test_the_writer_thread_loses_nothing_and_keeps_order_up_to_close(tmp_path: Path) -> None:
    """While serving, a writer thread flushes (woken early once max_pending lines wait); close() stops it and
    writes the rest, so every recorded line reaches the file, in order."""
    log = PredictionLog(tmp_path, "v1", "hash", max_pending=5)
    log.start()
    for i in range(23):
        log.record(f"r{i}", 1.0 + i, [{"x": i}], [{"score": 0.5}])
    log.close()
    lines = [json.loads(line) for path in sorted(tmp_path.glob("*.jsonl")) for line in path.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [f"r{i}" for i in range(23)]
    assert log.written == 23 and log.failures == 0
