"""Write housing.csv: 506 synthetic rows shaped like the Boston housing data's six columns.

The real Boston data (Harrison & Rubinfeld, 1978) cannot be fetched here (no network at
build time), scikit-learn no longer ships it (removed in 1.2), and its B column encodes
a racial proportion. So this example ships a synthetic stand-in instead: each column is
drawn within the published range and near the published mean and spread of the
original, and MEDV (median value, $1000s) follows a documented linear rule plus noise.
B is kept only because the course's payload sends it; MEDV does not depend on it.
Nothing here says anything about real houses in Boston.

Run `python synthesize.py` to write housing.csv again (seeded: the same file each time).
"""

import csv
from pathlib import Path

import numpy as np

ROWS = 506  # as many as the original
SEED = 1978
HERE = Path(__file__).parent


def synthesize(rows: int = ROWS, seed: int = SEED) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    chas = (rng.random(rows) < 0.07).astype(int)  # ~7% of tracts bound the river
    rm = np.clip(rng.normal(6.28, 0.70, rows), 3.56, 8.78)
    tax = np.clip(rng.normal(408, 168, rows), 187, 711).round()
    ptratio = np.clip(rng.normal(18.5, 2.2, rows), 12.6, 22.0).round(1)
    b = np.clip(396.9 - rng.exponential(40, rows), 0.32, 396.9).round(2)
    lstat = np.clip(rng.gamma(4.0, 3.2, rows) - 0.2 * (rm - 6.28) * 10, 1.73, 37.97).round(2)
    medv = (
        22.5
        + 5.0 * (rm - 6.28)
        - 0.6 * (lstat - 12.65)
        - 0.9 * (ptratio - 18.5)
        - 0.01 * (tax - 408)
        + 2.5 * chas
        + rng.normal(0, 2.5, rows)
    )
    medv = np.clip(medv, 5.0, 50.0).round(1)
    return [
        {"CHAS": c, "RM": round(r, 3), "TAX": t, "PTRATIO": p, "B": bb, "LSTAT": ls, "MEDV": m}
        for c, r, t, p, bb, ls, m in zip(
            chas.tolist(),
            rm.tolist(),
            tax.tolist(),
            ptratio.tolist(),
            b.tolist(),
            lstat.tolist(),
            medv.tolist(),
            strict=True,
        )
    ]


if __name__ == "__main__":
    rows = synthesize()
    with open(HERE / "housing.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to housing.csv")
