"""Train the housing model from housing.csv; save model.joblib and its error bound.

`make model` runs this. The test checks the served predictions on the training rows
against the bound written to model.json, so a service that loads the wrong model, or
mixes up the columns, fails it.
"""

import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["CHAS", "RM", "TAX", "PTRATIO", "B", "LSTAT"]  # the course's payload
TARGET = "MEDV"
HERE = Path(__file__).parent


def fit() -> tuple[Pipeline, pd.DataFrame]:
    """The model fitted on housing.csv, and the data."""
    data = pd.read_csv(HERE / "housing.csv")
    model = make_pipeline(StandardScaler(), LinearRegression())
    model.fit(data[FEATURES].to_numpy(dtype=float), data[TARGET].to_numpy(dtype=float))
    return model, data


def train(folder: Path = HERE) -> dict[str, object]:
    model, data = fit()
    errors = model.predict(data[FEATURES].to_numpy(dtype=float)) - data[TARGET].to_numpy()
    report = {
        "features": FEATURES,
        "rows": len(data),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "max_abs_error": float(np.max(np.abs(errors))),
    }
    joblib.dump(model, folder / "model.joblib")
    (folder / "model.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    print(json.dumps(train(out)))
