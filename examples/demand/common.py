"""What the demand scripts share: the series of sales.csv, the held-out tail, and the
accuracy measures the closing notes quote.

Every series is daily and complete (stock-outs are recorded as 0 units, not missing).
The last HOLDOUT days of each series are never seen by a training script: the bundled
models are fitted on the days before, and forecast the held-out days from there.
"""

import csv
import datetime as dt
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HOLDOUT = 28
QUANTILES = [0.1, 0.5, 0.9]


def load_series():
    """{(sku_id, location_id): units as float64, oldest first}, and the dates."""
    series, dates = {}, {}
    with open(os.path.join(HERE, "sales.csv"), newline="") as f:
        for row in csv.DictReader(f):
            key = (row["sku_id"], row["location_id"])
            series.setdefault(key, []).append(float(row["units"]))
            dates.setdefault(key, []).append(row["date"])
    keys = sorted(series)
    first = dates[keys[0]]
    for k in keys:
        assert dates[k] == first, f"{k} is not on the common calendar"
    return {k: np.array(series[k]) for k in keys}, [dt.date.fromisoformat(d) for d in first]


def wape(actual, forecast):
    """Sum of absolute errors over the sum of sales (MAPE is undefined on zeros)."""
    actual, forecast = np.asarray(actual), np.asarray(forecast)
    return float(np.abs(actual - forecast).sum() / actual.sum())


def scaled_pinball(actual, quantile_forecasts, levels):
    """Mean pinball loss over the levels, summed over points, over the sum of sales."""
    actual = np.asarray(actual)
    loss = 0.0
    for q, values in zip(levels, quantile_forecasts):
        diff = actual - np.asarray(values)
        loss += np.maximum(q * diff, (q - 1) * diff).sum()
    return float(loss / len(levels) / actual.sum())


def seasonal_naive(train, horizon):
    """Repeat the last week."""
    return np.resize(train[-7:], horizon)
