"""Fits one ETS model per SKU-location with statsmodels and writes the bundle Mercator
serves (kind `ets`, one artifact for every series), plus what the parity tests check.

    python train_ets.py     # needs statsmodels, pandas, numpy; writes ets/

Each series gets additive errors, a damped additive trend and additive weekly
seasonality (AAdA), fitted on all but the last HOLDOUT days. The bundle (written by the
mercator package's exporter, which proves the seasonal states' order on each fit) stores,
per series, the fitted smoothing parameters and the states *after the last training day*
(`last_date`), with the fit's mean squared one-step error and its number of
observations: a forecast then filters only the days that came after `last_date` (the
server reads them from the feature store) and forecasts from there, exactly as
statsmodels would had it smoothed the longer series with the same parameters.

ets/expected.json holds statsmodels' own numbers for a few series: the forecast and
80% interval from the end of training, and from the end of the full series (statsmodels
smoothing all 365 days with the fitted parameters).
"""

import json
import os
import sys
import warnings

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from common import HERE, HOLDOUT, QUANTILES, load_series, scaled_pinball, seasonal_naive, wape

sys.path.insert(0, os.path.join(HERE, "../../python/src"))  # the package, when not installed
from mercator.export import export_ets_bundle  # noqa: E402

warnings.simplefilter("ignore")
M = 7
OUT = os.path.join(HERE, "ets")
PARITY_SERIES = 12


def fit_series(y, start):
    dated = pd.Series(y, index=pd.date_range(start, periods=len(y), freq="D"))
    model = ETSModel(dated, error="add", trend="add", damped_trend=True, seasonal="add",
                     seasonal_periods=M, initialization_method="estimated")
    return model.fit(disp=False, maxiter=2000)


def write(fits, out_dir):
    """ets.json (the bundle: each series' parameters and its states after the last
    training day, by the mercator package's exporter) and mercator.json."""
    export_ets_bundle(
        fits, out_dir, horizon=HOLDOUT, quantiles=QUANTILES,
        history={"values": "daily_sales:units", "last_date": "daily_sales:last_date"},
        extra={"quality": {"kind": "forecast"}},
        description="One ETS model (additive errors, damped trend, additive weekly seasonality) "
                    "per SKU-location, fitted by statsmodels (examples/demand/train_ets.py)",
        overwrite=True)


def interval(results, horizon):
    pred = results.get_prediction(start=results.nobs, end=results.nobs + horizon - 1)
    frame = pred.summary_frame(alpha=0.2)
    return {"mean": frame["mean"].tolist(), "q0.1": frame["pi_lower"].tolist(),
            "q0.9": frame["pi_upper"].tolist()}


def main():
    series, dates = load_series()
    os.makedirs(OUT, exist_ok=True)
    train_end = dates[-HOLDOUT - 1]
    fits, expected = {}, []
    actual, naive, means, quantiles = [], [], [], {q: [] for q in QUANTILES}
    for i, (key, y) in enumerate(series.items()):
        train = y[:-HOLDOUT]
        fit = fit_series(train, dates[0])
        fits[tuple(key)] = fit
        held = interval(fit, HOLDOUT)
        actual.append(y[-HOLDOUT:])
        naive.append(seasonal_naive(train, HOLDOUT))
        mean = np.clip(held["mean"], 0, None)
        means.append(mean)
        sd = (np.array(held["q0.9"]) - np.array(held["mean"])) / norm.ppf(0.9)
        for q in QUANTILES:
            quantiles[q].append(np.clip(np.array(held["mean"]) + norm.ppf(q) * sd, 0, None))
        if i < PARITY_SERIES:
            full = pd.Series(y, index=pd.date_range(dates[0], periods=len(y), freq="D"))
            smoothed = ETSModel(full, error="add", trend="add", damped_trend=True, seasonal="add",
                                seasonal_periods=M, initialization_method="estimated").smooth(fit.params)
            expected.append({"key": list(key), "history": y.tolist(),
                             "train_last_date": train_end.isoformat(),
                             "full_last_date": dates[-1].isoformat(),
                             "from_train_end": held, "from_full": interval(smoothed, HOLDOUT),
                             "full_mse": float(smoothed.mse)})
    write(fits, OUT)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"series": expected}, f, separators=(",", ":"))
    a = np.concatenate(actual)
    print(f"{len(series)} series, last {HOLDOUT} days held out (from {dates[-HOLDOUT]})")
    print(f"seasonal naive WAPE {wape(a, np.concatenate(naive)):.3f}")
    print(f"ETS AAdA WAPE {wape(a, np.concatenate(means)):.3f}, scaled pinball "
          f"{scaled_pinball(a, [np.concatenate(quantiles[q]) for q in QUANTILES], QUANTILES):.3f}")


if __name__ == "__main__":
    main()
