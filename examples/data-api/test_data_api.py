"""data-api through a real skylift server, as the course's clients use it."""

import base64
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from skylift.testing import serve

HERE = Path(__file__).parent
PATHS = {"/api/funcs", "/api/{op}"}
CSV = b"first_name,last_name,count\nMary,Smith,5\nJohn,Doe,7\nMary,Jones,7\nAnn,Lee,1\n"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client():
    with serve(str(HERE)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def put(client, op, body=CSV, params=None, headers=JSON):
    params = {"column": "count", "group_by": "first_name"} if params is None else params
    content = base64.b64encode(body) if isinstance(body, bytes) else body
    return client.put(f"/api/{op}", params=params, content=content, headers=headers)


def test_funcs_lists_every_op_with_a_description(client):
    response = client.get("/api/funcs")
    assert response.status_code == 200
    funcs = response.json()
    assert set(funcs) >= {"npsum", "npmedian", "npmean", "npmax", "npmin", "npcount"}
    assert all(isinstance(text, str) and text for text in funcs.values())


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("npsum", {"Ann": 1, "John": 7, "Mary": 12}),
        ("npmedian", {"Ann": 1.0, "John": 7.0, "Mary": 6.0}),
        ("npmean", {"Ann": 1.0, "John": 7.0, "Mary": 6.0}),
        ("npmax", {"Ann": 1, "John": 7, "Mary": 7}),
        ("npmin", {"Ann": 1, "John": 7, "Mary": 5}),
        ("npcount", {"Ann": 1, "John": 1, "Mary": 2}),
    ],
)
def test_each_op_aggregates_the_column_per_group(client, op, expected):
    response = put(client, op)
    assert response.status_code == 200, response.text
    assert response.json() == expected


def test_base64_wrapped_at_76_columns_as_the_base64_tool_writes_it(client):
    header, rows = CSV.split(b"\n", 1)
    wrapped = base64.encodebytes(header + b"\n" + rows * 20)  # a line break every 76 chars
    assert b"\n" in wrapped.strip()
    assert put(client, "npsum", body=wrapped.decode()).json() == {
        "Ann": 20,
        "John": 140,
        "Mary": 240,
    }


def test_count_works_on_a_text_column(client):
    params = {"column": "last_name", "group_by": "first_name"}
    assert put(client, "npcount", params=params).json() == {"Ann": 1, "John": 1, "Mary": 2}


def test_a_body_near_the_payload_limit_works(client):
    rows = 410_000  # 5.5 MB of base64: the event stays under Lambda's 6 MB
    csv = b"g,v\n" + b"".join(b"%d,%07d\n" % (i % 3, i) for i in range(rows))
    assert 5_000_000 < len(base64.b64encode(csv)) < 6 * 1024 * 1024 - 100_000
    response = put(client, "npsum", body=csv, params={"column": "v", "group_by": "g"})
    assert response.status_code == 200, response.text
    assert sum(response.json().values()) == rows * (rows - 1) // 2


def test_a_body_over_the_payload_limit_is_413(client):
    csv = b"g,v\n" + b"1,12345678\n" * 600_000  # 6.6 MB of CSV, 8.8 MB of base64
    response = put(client, "npsum", body=csv, params={"column": "v", "group_by": "g"})
    assert response.status_code == 413


def test_wrong_content_type_is_415(client):
    response = put(client, "npsum", headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


@pytest.mark.parametrize("absent", ["column", "group_by"])
def test_a_missing_query_parameter_is_400_naming_it(client, absent):
    params = {"column": "count", "group_by": "first_name"}
    del params[absent]
    response = put(client, "npsum", params=params)
    assert response.status_code == 400
    assert f"{absent} is missing" in response.json()["error"]


def test_unknown_op_is_404_listing_the_known_ones(client):
    response = put(client, "npmode")
    assert response.status_code == 404
    body = response.json()
    assert "npmode" in body["error"]
    assert set(body["ops"]) == {"npsum", "npmedian", "npmean", "npmax", "npmin", "npcount"}
    assert "npsum" in body["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("this is not base64!", "not base64"),
        ("", "empty"),
        (base64.b64encode(bytes(range(256))).decode(), "not CSV"),
        (base64.b64encode(b'a,b\n1,"2\n').decode(), "not CSV"),
    ],
)
def test_a_body_that_is_not_base64_or_not_csv_is_400_saying_which(client, body, message):
    response = put(client, "npsum", body=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_csv_without_the_named_columns_is_400_naming_them(client):
    response = put(client, "npsum", params={"column": "age", "group_by": "first_name"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "'age'" in error
    assert "first_name, last_name, count" in error


def test_a_non_numeric_column_for_a_numeric_op_is_400(client):
    response = put(client, "npmean", params={"column": "last_name", "group_by": "first_name"})
    assert response.status_code == 400
    assert "'last_name' is not numeric" in response.json()["error"]


def test_openapi_json_documents_the_routes(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert "servers" not in doc  # Swagger UI's "Try it out" calls the server it came from
    assert set(doc["paths"]) == PATHS


def test_swagger_ui_is_served_by_the_server_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "https://" not in page.text and "http://" not in page.text  # no CDN
    assert '"/openapi.json"' in page.text
    for asset, kind in [("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")]:
        response = client.get(f"/docs/{asset}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert f"/docs/{asset}" in page.text
    assert client.get("/docs/..%2Fcore.py").status_code == 404


def test_schemathesis_finds_no_server_error_and_no_response_off_schema(client, tmp_path):
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st),
            "run",
            str(client.base_url.join("/openapi.json")),
            "--max-examples",
            "30",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"(\d+) generated, \1 passed", run.stdout), run.stdout[-3000:]


def test_the_document_describes_the_query_and_the_body_for_try_it_out(client):
    put_op = client.get("/openapi.json").json()["paths"]["/api/{op}"]["put"]
    params = {(p["name"], p["in"]): p for p in put_op["parameters"]}
    assert set(params) == {("op", "path"), ("column", "query"), ("group_by", "query")}
    assert set(params["op", "path"]["schema"]["enum"]) == set(client.get("/api/funcs").json())
    body = put_op["requestBody"]["content"]["application/json"]
    # the documented example is one Swagger UI's "Try it out" sends: it must work
    query = {"column": "count", "group_by": "first_name"}
    response = client.put("/api/npsum", params=query, content=body["example"], headers=JSON)
    assert response.json() == {"John": 7, "Mary": 12}


def test_a_json_string_holding_the_base64_is_as_good(client):
    quoted = '"' + base64.b64encode(CSV).decode() + '"'  # what a JSON client sends for a string
    assert put(client, "npsum", body=quoted).json() == {"Ann": 1, "John": 7, "Mary": 12}
