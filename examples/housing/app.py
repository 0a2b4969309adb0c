"""housing: predict a median house value (MEDV, $1000s) with scikit-learn.

POST /predict with the course's payload, one {"row": value} map per column:

    curl -X POST http://127.0.0.1:8080/predict -H 'Content-Type: application/json' -d \\
      '{"CHAS":{"0":0},"RM":{"0":6.575},"TAX":{"0":296.0},"PTRATIO":{"0":15.3},
        "B":{"0":396.9},"LSTAT":{"0":4.98}}'

answers {"prediction": [29.6...]}, one value per row. The model (model.joblib, written by
`make model`) is loaded here, at import: in the init phase, once, before the zygote
forks, so every instance shares its pages. Without model.joblib the same model is
fitted here from housing.csv (a few milliseconds), and the log says so.
The data is synthetic: see synthesize.py and README.md.
"""

import base64
import json
import math
import os
import sys
from pathlib import Path

import joblib
import numpy as np
from pydantic import BaseModel, ConfigDict

from skylift import App

HERE = Path(__file__).parent
FEATURES = ["CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT"]


def load_model():
    path = HERE / "model.joblib"
    if path.exists():
        return joblib.load(path)
    print("housing: no model.joblib (run `make model`); fitting on housing.csv", file=sys.stderr)
    sys.path.insert(0, str(HERE))
    from train import fit

    return fit()[0]


def closed_form(model):
    """The fitted scaler + linear model as one weight vector and bias: the same numbers,
    without scikit-learn's per-call checks (about 0.2 ms a call; see load-testing.md)."""
    scaler, linear = model[0], model[-1]
    weights = linear.coef_ / scaler.scale_
    bias = linear.intercept_ - float(np.dot(scaler.mean_ / scaler.scale_, linear.coef_))
    return lambda rows: rows @ weights + bias


MODEL = load_model()
# "sklearn" (default) calls the pipeline; "numpy" the same model as one matrix product.
# Read at import: an instance's environment is fixed, as on Lambda.
PREDICT = MODEL.predict if os.environ.get("PREDICT_WITH") != "numpy" else closed_form(MODEL)
app = App("housing", docs=True)  # /openapi.json and Swagger UI at /docs
COURSE_PAYLOAD = {
    "CHAS": {"0": 0},
    "RM": {"0": 6.575},
    "TAX": {"0": 296.0},
    "PTRATIO": {"0": 15.3},
    "B": {"0": 396.9},
    "LSTAT": {"0": 4.98},
}


class Houses(BaseModel):
    """One {"row": value} map per column; every column has the same rows."""

    model_config = ConfigDict(json_schema_extra={"examples": [COURSE_PAYLOAD]})
    CHAS: dict[str, float]  # 1 if the tract bounds the river, else 0
    RM: dict[str, float]  # average rooms per dwelling
    TAX: dict[str, float]  # property-tax rate per $10,000
    PTRATIO: dict[str, float]  # pupil-teacher ratio
    B: dict[str, float]  # the original's B column; the synthetic target ignores it
    LSTAT: dict[str, float]  # % lower status of the population


class Prediction(BaseModel):
    prediction: list[float]  # MEDV in $1000s, one per row, in the payload's row order


class BadPayload(ValueError):
    """Raised when the payload cannot be predicted on; the message names what is wrong."""


def number(column: str, row: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadPayload(f"{column} row {row}: {value!r} is not a number")
    try:
        result = float(value)
    except ValueError:
        raise BadPayload(f"{column} row {row}: {value!r} is not a number") from None
    if not math.isfinite(result):
        raise BadPayload(f"{column} row {row}: {value!r} is not a finite number")
    return result


def parse(body: str | None) -> np.ndarray:
    """The payload's rows as a matrix in FEATURES order, or BadPayload."""
    try:
        data = json.loads(body or "")
    except json.JSONDecodeError:
        raise BadPayload(
            'the body must be JSON: {"CHAS": {"0": 0}, "RM": {"0": 6.5}, ...}'
        ) from None
    if not isinstance(data, dict) or not data:
        raise BadPayload(f"the payload is empty: send the columns {', '.join(FEATURES)}")
    missing = [name for name in FEATURES if name not in data]
    if missing:
        raise BadPayload(f"the payload has no column {', '.join(missing)}")
    for name in FEATURES:
        if not isinstance(data[name], dict):
            raise BadPayload(f'{name} must be a map of rows like {{"0": value}}')
    rows = list(data[FEATURES[0]])
    if not rows:
        raise BadPayload(f"{FEATURES[0]} has no rows: send at least one")
    for name in FEATURES[1:]:
        column = data[name]
        extra = [row for row in column if row not in data[FEATURES[0]]]
        lacking = [row for row in rows if row not in column]
        if lacking or extra:
            row = (lacking or extra)[0]
            raise BadPayload(
                f"rows of unequal length: {name} has {len(column)} rows, "
                f"{FEATURES[0]} has {len(rows)}; row {row} is not in both"
            )
    return np.array([[number(name, row, data[name][row]) for name in FEATURES] for row in rows])


def respond(status: int, payload: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


@app.http(
    "/predict",
    methods=["POST"],
    memory=512,
    timeout=10,
    environment={"PREDICT_WITH": "sklearn"},
    request_model=Houses,
    response_model=Prediction,
)
def predict(event, context):
    """Predict the median house value (MEDV, $1000s) of each row.

    Columns CHAS, RM, TAX, PTRATIO, B and LSTAT, each a {"row": value} map.
    """
    try:
        body = event.get("body")
        if body and event.get("isBase64Encoded"):  # sent without a text Content-Type
            body = base64.b64decode(body).decode("utf-8", "replace")
        rows = parse(body)
    except BadPayload as exc:
        return respond(400, {"error": str(exc)})
    prediction = PREDICT(rows)
    if not np.isfinite(prediction).all():  # inputs so large the arithmetic overflows
        return respond(400, {"error": "the values are out of range: no finite prediction"})
    return respond(200, {"prediction": prediction.tolist()})
