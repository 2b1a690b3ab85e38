"""The SageMaker inference-container contract, against a real server process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from tiny_package import EXAMPLE, free_port, server_command, server_process, trained_package

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def package() -> Path:
    return trained_package()


@pytest.fixture(scope="module")
def manifest(package: Path) -> dict:
    return json.loads((package / "manifest.json").read_text())


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predictions")


@pytest.fixture(scope="module")
def server(package: Path, log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = server_command(package, port, "--log-dir", str(log_dir), "--max-body-bytes", str(LIMIT))
    with server_process(command, url, log=log):
        yield url


def test_ping_answers_200_once_the_model_is_loaded(server: str) -> None:
    assert httpx.get(f"{server}/ping").status_code == 200


def test_one_record_gets_one_prediction_with_version_and_request_id(server: str, manifest: dict) -> None:
    response = httpx.post(f"{server}/invocations", json=EXAMPLE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert len(body["predictions"]) == 1
    prediction = body["predictions"][0]
    assert 0.0 <= prediction["probability"] <= 1.0
    assert prediction["label"] in (0, 1)
    assert body["model_version"] == manifest["version"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_instances_get_one_prediction_each_in_order(server: str) -> None:
    records = [dict(EXAMPLE, n_carts=carts) for carts in (0, 1, 3)]
    batch = httpx.post(f"{server}/invocations", json={"instances": records}).json()["predictions"]
    singles = [httpx.post(f"{server}/invocations", json=r).json()["predictions"][0] for r in records]
    assert len(batch) == 3
    assert [p["probability"] for p in batch] == pytest.approx([p["probability"] for p in singles], abs=1e-6)


def test_a_large_batch_is_predicted_too(server: str) -> None:
    records = [dict(EXAMPLE, n_views=i) for i in range(200)]  # above the thread-pool threshold
    body = httpx.post(f"{server}/invocations", json={"instances": records}).json()
    assert len(body["predictions"]) == 200


def test_a_client_request_id_is_kept(server: str) -> None:
    response = httpx.post(f"{server}/invocations", json=EXAMPLE, headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


def _rejected(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    return str(body["error"])


def test_malformed_json_is_400_with_the_reason(server: str) -> None:
    response = httpx.post(f"{server}/invocations", content=b'{"n_views": 3,', headers={"content-type": "application/json"})
    assert "not valid JSON" in _rejected(response, 400)


def test_wrong_content_type_is_415(server: str) -> None:
    response = httpx.post(f"{server}/invocations", content=b"3,1,2", headers={"content-type": "text/csv"})
    assert "application/json" in _rejected(response, 415)


def test_content_type_with_charset_is_accepted(server: str) -> None:
    response = httpx.post(
        f"{server}/invocations", content=json.dumps(EXAMPLE).encode(), headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 200


def test_missing_field_is_422_naming_it(server: str) -> None:
    record = {k: v for k, v in EXAMPLE.items() if k != "avg_price"}
    assert "avg_price" in _rejected(httpx.post(f"{server}/invocations", json=record), 422)


def test_wrong_type_is_422_naming_the_field(server: str) -> None:
    error = _rejected(httpx.post(f"{server}/invocations", json=dict(EXAMPLE, n_views="many")), 422)
    assert "n_views" in error and "many" in error


def test_unknown_field_is_422_naming_it(server: str) -> None:
    assert "colour" in _rejected(httpx.post(f"{server}/invocations", json=dict(EXAMPLE, colour="red")), 422)


def test_the_bad_record_of_a_batch_is_named(server: str) -> None:
    records = [EXAMPLE, dict(EXAMPLE, device=["x"])]
    assert "record 1" in _rejected(httpx.post(f"{server}/invocations", json={"instances": records}), 422)


@pytest.mark.parametrize("body", [[EXAMPLE], 3, {"instances": []}, {"instances": [1]}, {"instances": {"a": 1}}])
def test_a_body_that_is_not_a_record_or_instances_is_400(server: str, body: object) -> None:
    _rejected(httpx.post(f"{server}/invocations", json=body), 400)


def test_a_body_over_the_limit_is_413(server: str) -> None:
    big = dict(EXAMPLE, device="x" * (LIMIT + 1))
    assert str(LIMIT) in _rejected(httpx.post(f"{server}/invocations", json=big), 413)


def test_a_chunked_body_over_the_limit_is_413(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"device": "'
        for _ in range(LIMIT // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = httpx.post(f"{server}/invocations", content=chunks(), headers={"content-type": "application/json"})
    _rejected(response, 413)
    # the connection stays usable for the next request
    assert httpx.post(f"{server}/invocations", json=EXAMPLE).status_code == 200


def test_unknown_paths_and_methods_are_4xx(server: str) -> None:
    assert httpx.get(f"{server}/invocations").status_code == 405
    assert httpx.get(f"{server}/nothing").status_code == 404


def test_every_request_is_logged_as_one_json_line(server: str, log_dir: Path, manifest: dict) -> None:
    records = [dict(EXAMPLE, session_id="log-a", n_views=5), dict(EXAMPLE, session_id="log-b")]
    response = httpx.post(f"{server}/invocations", json={"instances": records}, headers={"x-request-id": "log-test"})
    outputs = response.json()["predictions"]
    lines: list[dict] = []
    deadline = time.monotonic() + 30  # the server flushes twice a second
    while time.monotonic() < deadline:
        lines = [json.loads(line) for path in log_dir.glob("*.jsonl") for line in path.read_text().splitlines()]
        lines = [line for line in lines if line["request_id"] == "log-test"]
        if lines:
            break
        time.sleep(0.1)
    (line,) = lines  # the two records of the request, on one line
    assert line["records"] == 2 and "index" not in line
    assert line["inputs"] == records and line["outputs"] == outputs
    assert line["model_version"] == manifest["version"]
    assert line["plan_hash"] == manifest["plan_hash"]
    assert datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0
    files = list(log_dir.glob("*.jsonl"))
    assert len(files) == 1 and files[0].stem.endswith(f"-{_server_pid(server)}")


def _server_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"rscale.serving.server" in cmdline and port.encode() in cmdline:
                return int(proc.name)
    raise AssertionError("server process not found")


def test_boto3_sagemaker_runtime_invoke_endpoint_reaches_the_server(server: str, manifest: dict) -> None:
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "sagemaker-runtime", endpoint_url=server, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    response = client.invoke_endpoint(
        EndpointName="conversion", Body=json.dumps(EXAMPLE), ContentType="application/json", Accept="application/json"
    )
    body = json.loads(response["Body"].read())
    assert response["ContentType"].startswith("application/json")
    assert body["model_version"] == manifest["version"]
    assert 0.0 <= body["predictions"][0]["probability"] <= 1.0
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="conversion", Body=json.dumps({"n_views": 1}), ContentType="application/json")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422


def test_serve_entry_point_reads_sm_model_dir_like_a_container(package: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Path(sys.executable).with_name("serve")
    command = [str(serve)] if serve.exists() else [sys.executable, "-c", "from rscale.serving.server import serve_main; serve_main()"]
    env = {"SM_MODEL_DIR": str(package), "SAGEMAKER_BIND_TO_PORT": str(port)}
    with server_process(command, url, env=env, log=tmp_path / "serve.log") as process:
        assert httpx.post(f"{url}/invocations", json=EXAMPLE).status_code == 200
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert "0.0.0.0" in (tmp_path / "serve.log").read_text()  # the container default host


def test_serve_entry_point_without_a_package_says_where_it_looked(tmp_path: Path) -> None:
    import subprocess

    missing = tmp_path / "nothing"
    result = subprocess.run(
        [sys.executable, "-m", "rscale.serving.server"], env={**os.environ, "SM_MODEL_DIR": str(missing)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr and "SM_MODEL_DIR" in result.stderr


def test_the_listening_socket_is_tcp_with_nodelay_and_shareable() -> None:
    """asyncio turns Nagle off on accepted connections only for sockets created as IPPROTO_TCP; without it
    each response waited for the client's delayed ACK (a 44 ms p50 in bench/serving.py)."""
    import socket

    from rscale.serving.server import _listening_socket

    sock = _listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)  # a replacement server can bind beside it
    finally:
        sock.close()
