"""housing through a real skylift server, with the model `make model` trains."""

import csv
import json
import math
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from skylift.testing import ServerLog, serve

HERE = Path(__file__).parent
PATHS = {"/predict"}
FEATURES = ["CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT"]
COURSE = {
    "CHAS": {"0": 0},
    "RM": {"0": 6.575},
    "TAX": {"0": 296.0},
    "PTRATIO": {"0": 15.3},
    "B": {"0": 396.9},
    "LSTAT": {"0": 4.98},
}


@pytest.fixture(scope="module")
def bound():
    # What `make model` runs; the service then loads the file it writes.
    subprocess.run([sys.executable, str(HERE / "train.py")], check=True, capture_output=True)
    return json.loads((HERE / "model.json").read_text())


@pytest.fixture(scope="module")
def client(bound):
    with serve(str(HERE)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def test_the_course_payload_gets_one_prediction(client):
    response = client.post("/predict", json=COURSE)
    assert response.status_code == 200, response.text
    (value,) = response.json()["prediction"]
    assert 5 < value < 50  # MEDV, in $1000s


def test_predictions_on_the_training_rows_are_within_the_training_error(client, bound):
    with open(HERE / "housing.csv") as f:
        rows = list(csv.DictReader(f))
    payload = {name: {str(i): float(r[name]) for i, r in enumerate(rows)} for name in FEATURES}
    response = client.post("/predict", json=payload)
    assert response.status_code == 200
    predictions = response.json()["prediction"]
    assert len(predictions) == len(rows) == bound["rows"]
    errors = [p - float(r["MEDV"]) for p, r in zip(predictions, rows, strict=True)]
    rmse = math.sqrt(sum(e * e for e in errors) / len(errors))
    assert rmse == pytest.approx(bound["rmse"], rel=1e-6)
    assert max(abs(e) for e in errors) <= bound["max_abs_error"] + 1e-9
    assert rmse < 4  # and the bound itself is a useful one: MEDV spans 5..50


def test_rows_are_answered_in_order(client):
    two = {name: {"0": rows["0"], "1": rows["0"]} for name, rows in COURSE.items()}
    two["RM"]["1"] = 8.5  # more rooms: a higher value
    low, high = client.post("/predict", json=two).json()["prediction"]
    assert high > low


@pytest.mark.parametrize(
    ("payload", "message", "where"),
    [
        # caught by the request model, before the handler: pydantic's errors come along
        ({k: v for k, v in COURSE.items() if k != "TAX"}, "TAX: Field required", ["TAX"]),
        ({**COURSE, "RM": {"0": "six"}}, "RM.0: Input should be a valid number", ["RM", "0"]),
        ({**COURSE, "LSTAT": {"0": None}}, "LSTAT.0:", ["LSTAT", "0"]),
        ({}, "CHAS: Field required", ["CHAS"]),
        # caught by the handler
        ({**COURSE, "B": {"0": 1.0, "1": 2.0}}, "rows of unequal length: B", None),
        ({**COURSE, "PTRATIO": {}}, "PTRATIO has 0 rows", None),
        ({**COURSE, "CHAS": {}}, "CHAS has no rows", None),
        ({**COURSE, "RM": {"0": 1e308}}, "out of range", None),
    ],
)
def test_bad_payloads_are_400_naming_the_column_or_row(client, payload, message, where):
    response = client.post("/predict", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert message in body["error"]
    if where is not None:
        assert body["detail"][0]["loc"] == where


def test_a_body_that_is_not_json_is_400(client):
    response = client.post("/predict", content=b"RM=6.5")
    assert response.status_code == 400
    assert "Invalid JSON" in response.json()["error"]


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


def test_the_closed_form_model_predicts_the_same(client, tmp_path):
    # What docs/load-testing.md measures: PREDICT_WITH=numpy, the same fitted model as
    # one matrix product instead of the scikit-learn pipeline's call. Served from a copy:
    # the example folder has its server already (one per folder).
    two = {name: {"0": rows["0"], "1": rows["0"] * 1.1} for name, rows in COURSE.items()}
    expected = client.post("/predict", json=two).json()["prediction"]
    for name in ("app.py", "train.py", "housing.csv", "model.joblib", "model.json"):
        if (HERE / name).exists():
            (tmp_path / name).write_bytes((HERE / name).read_bytes())
    with serve(str(tmp_path), options=["--env-vars", str(HERE / "numpy.env.json")]) as url:
        response = httpx.post(url + "/predict", json=two, timeout=30)
    assert response.json()["prediction"] == pytest.approx(expected, rel=1e-12)


def test_the_model_is_loaded_once_in_the_init_phase_and_shared_by_instances(tmp_path):
    # A copy without model.joblib: the app fits the model at import and says so, once.
    for name in ("app.py", "train.py", "housing.csv"):
        (tmp_path / name).write_bytes((HERE / name).read_bytes())
    log = ServerLog()

    def skylift(*args):
        run = subprocess.run(
            [sys.executable, "-m", "skylift.cli", *args, "--url", url],
            capture_output=True,
            text=True,
            check=True,
        )
        return run.stdout

    with serve(str(tmp_path), log=log) as url, httpx.Client(base_url=url, timeout=30) as c:
        skylift("scale", "predict", "--min", "3")  # three instances, forked from the zygote
        deadline = time.monotonic() + 20
        while json.loads(skylift("status", "--json"))["functions"]["predict"]["instances"] < 3:
            assert time.monotonic() < deadline, "the minimum instances did not start"
            time.sleep(0.1)
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: c.post("/predict", json=COURSE), range(24)))
    assert all(a.status_code == 200 for a in answers)
    assert len({a.json()["prediction"][0] for a in answers}) == 1
    assert log.text.count("fitting on housing.csv") == 1
