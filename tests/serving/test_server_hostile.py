"""Hostile clients (5,000 generated requests in all): whatever the body, content type, method, size, depth or encoding, the endpoint answers
4xx with a reason (or 200 for a valid request), never 5xx, and never drops a well-formed HTTP request.

One real server process, started through the `serve` entry point as a container would, and one keep-alive
client: a dropped connection shows as a transport error on the next request.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_package import EXAMPLE, free_port, server_process, trained_package

LIMIT = 64 * 1024
FIELDS = sorted(EXAMPLE)
SETTINGS = settings(
    deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Path(sys.executable).with_name("serve")
    command = [str(serve)] if serve.exists() else [sys.executable, "-m", "rscale.serving.server"]
    logs = tmp_path_factory.mktemp("hostile")
    command += ["--model-dir", str(trained_package()), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--max-body-bytes", str(LIMIT), "--log-dir", str(logs / "predictions")]
    with server_process(command, url, log=logs / "server.log"), httpx.Client(base_url=url, timeout=30) as client:
        yield client
        server_log = (logs / "server.log").read_text()
    assert "Traceback" not in server_log, server_log[-3000:]


def _answered(response: httpx.Response) -> None:
    """A 200 with predictions, or a 4xx whose JSON body gives the reason."""
    assert response.status_code < 500, response.text[:2000]
    if response.request.method == "HEAD":
        return
    if response.status_code >= 400:
        assert isinstance(response.json()["error"], str) and response.json()["error"]
    elif response.request.url.path.endswith("/invocations"):
        predictions = response.json()["predictions"]
        assert isinstance(predictions, list) and predictions


def _post(client: httpx.Client, content: bytes, content_type: str = "application/json") -> httpx.Response:
    response = client.post("/invocations", content=content, headers={"content-type": content_type})
    _answered(response)
    return response


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
field_values = json_values | st.sampled_from(list(EXAMPLE.values())) | st.integers(-(10**400), 10**400)
records = st.dictionaries(st.sampled_from([*FIELDS, "session_id", "colour", ""]), field_values, max_size=9)
full_records = st.fixed_dictionaries({name: field_values for name in FIELDS})


@settings(SETTINGS, max_examples=1400)
@given(body=json_values | records | full_records | st.builds(lambda r: {"instances": r}, st.lists(records | full_records | json_values, max_size=6)))
def test_any_json_body_is_answered_without_5xx(client: httpx.Client, body: object) -> None:
    _post(client, json.dumps(body).encode())


@settings(SETTINGS, max_examples=500)
@given(record=full_records)
def test_a_rejected_record_lists_every_problem(client: httpx.Client, record: dict) -> None:
    response = _post(client, json.dumps(record).encode())
    if response.status_code == 422:
        body = response.json()
        bad = [name for name in FIELDS if f"`{name}`" in body["error"]]
        assert len(body["problems"]) == len(bad) >= 1


@settings(SETTINGS, max_examples=1100)
@given(raw=st.binary(max_size=300))
def test_any_bytes_are_answered_without_5xx(client: httpx.Client, raw: bytes) -> None:
    _post(client, raw)


@settings(SETTINGS, max_examples=300)
@given(depth=st.integers(1, 200_000), opener=st.sampled_from(["[", '{"a":', '{"instances":[', '{"n_views":[']), closed=st.booleans())
def test_deep_nesting_is_400_not_a_crash(client: httpx.Client, depth: int, opener: str, closed: bool) -> None:
    closer = {"[": "]", '{"a":': "}", '{"instances":[': "]}", '{"n_views":[': "]}"}[opener]
    text = opener * depth + "1" + (closer * depth if closed else "")
    response = _post(client, text.encode())
    if len(text) > LIMIT:
        assert response.status_code == 413
    elif depth > 1:
        assert response.status_code in (400, 422)


@settings(SETTINGS, max_examples=400)
@given(
    record=full_records,
    encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig", "latin-1", "cp1252", "utf-7"]),
)
def test_other_encodings_are_answered_without_5xx(client: httpx.Client, record: dict, encoding: str) -> None:
    text = json.dumps(dict(record, device="café ☕"), ensure_ascii=False)
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode(encoding, errors="replace")
    _post(client, raw)


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)  # h11 refuses edge spaces


@settings(SETTINGS, max_examples=500)
@given(
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/csv", "", "APPLICATION/JSON", "application/x-npy"])
    | header_text,
    body=st.sampled_from([json.dumps(EXAMPLE).encode(), b"", b"1,2,3", b"\x00\xff"]),
)
def test_any_content_type_is_answered_without_5xx(client: httpx.Client, content_type: str, body: bytes) -> None:
    _post(client, body, content_type)


@settings(SETTINGS, max_examples=600)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.sampled_from(["/invocations", "/ping", "/endpoints/x/invocations", "/", "/invocations/", "/%00", "/a" * 200])
    | header_text.map(lambda text: "/" + text.replace("?", "").replace("#", "")),
    body=st.sampled_from([b"", json.dumps(EXAMPLE).encode(), b"[" * 5000]),
)
def test_any_method_and_path_is_answered_without_5xx(client: httpx.Client, method: str, path: str, body: bytes) -> None:
    response = client.request(method, path, content=body, headers={"content-type": "application/json"})
    _answered(response)


@settings(SETTINGS, max_examples=200)
@given(size=st.integers(0, 4 * LIMIT), chunked=st.booleans())
def test_any_size_is_answered_and_the_connection_kept(client: httpx.Client, size: int, chunked: bool) -> None:
    head, tail = b'{"device": "', b'"}'
    filler = b"x" * max(size - len(head) - len(tail), 0)
    body = head + filler + tail
    if chunked:
        content: bytes | Iterator[bytes] = iter([body[i : i + 8192] for i in range(0, len(body), 8192)])
        response = client.post("/invocations", content=content, headers={"content-type": "application/json"})
    else:
        response = client.post("/invocations", content=body, headers={"content-type": "application/json"})
    _answered(response)
    assert response.status_code == (413 if len(body) > LIMIT else 422)


def test_a_rejection_lists_every_problem_of_every_record(client: httpx.Client) -> None:
    bad = {"n_views": "many", "n_carts": None, "colour": "red", "device": ["x"]}
    response = _post(client, json.dumps({"instances": [EXAMPLE, bad]}).encode())
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [p.split(":")[0] for p in problems] == ["record 1"] * len(problems)
    text = " ".join(problems)
    for expected in ("colour", "`n_views`", "`device`", "`n_categories`", "`duration_s`", "`avg_price`"):
        assert expected in text
    assert "`n_carts`" not in text  # null is a valid (missing) number


def test_nan_and_infinity_are_not_json(client: httpx.Client) -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        response = _post(client, json.dumps(EXAMPLE).replace("19.5", token).encode())
        assert response.status_code == 400 and token in response.json()["error"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_far_over_the_limit_is_413_on_a_connection_that_stays_up(client: httpx.Client, chunked: bool) -> None:
    body = b"[" * (100 * LIMIT)
    content: bytes | Iterator[bytes] = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = client.post("/invocations", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert _post(client, json.dumps(EXAMPLE).encode()).status_code == 200
