"""Fits one ETS model per SKU-location with statsmodels and writes the bundle Mercator
serves (kind `ets`, one artifact for every series), plus what the parity tests check.

    python train_ets.py     # needs statsmodels, pandas, numpy; writes ets/

Each series gets additive errors, a damped additive trend and additive weekly
seasonality (AAdA), fitted on all but the last HOLDOUT days. The bundle stores, per
series, the fitted smoothing parameters and the states *after the last training day*
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
import warnings

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from common import HERE, HOLDOUT, QUANTILES, load_series, scaled_pinball, seasonal_naive, wape

warnings.simplefilter("ignore")
M = 7
OUT = os.path.join(HERE, "ets")
PARITY_SERIES = 12


def run(spec, y):
    """The textbook recursions: one-step predictions and the state after `y`."""
    a, b_, g, phi = spec["alpha"], spec["beta"], spec["gamma"], spec["phi"]
    level, slope, season = spec["initial_level"], spec["initial_trend"], list(spec["initial_seasonal"])
    preds = []
    for obs in y:
        base = level + phi * slope
        s = season[0]
        yhat = base + s
        e = obs - yhat
        preds.append(yhat)
        level, slope = base + a * e, phi * slope + b_ * e
        season = season[1:] + [s + g * e]
    return np.array(preds), {"level": level, "trend": slope, "seasonal": season}


def fit_series(y, start):
    dated = pd.Series(y, index=pd.date_range(start, periods=len(y), freq="D"))
    model = ETSModel(dated, error="add", trend="add", damped_trend=True, seasonal="add",
                     seasonal_periods=M, initialization_method="estimated")
    fit = model.fit(disp=False, maxiter=2000)
    spec = {"error": "add", "trend": "damped", "seasonal": "add", "seasonal_periods": M,
            "alpha": float(fit.smoothing_level), "beta": float(fit.smoothing_trend),
            "gamma": float(fit.smoothing_seasonal), "phi": float(fit.damping_trend),
            "initial_level": float(fit.initial_level), "initial_trend": float(fit.initial_trend)}
    raw = [float(v) for v in np.asarray(fit.initial_seasonal)]

    def miss(candidate):
        spec["initial_seasonal"] = candidate
        return np.abs(run(spec, y)[0] - np.asarray(fit.fittedvalues)).max()

    spec["initial_seasonal"] = min((raw, raw[::-1]), key=miss)
    preds, state = run(spec, y)
    assert np.allclose(preds, np.asarray(fit.fittedvalues), rtol=1e-7, atol=1e-9)
    return fit, spec, state


def interval(results, horizon):
    pred = results.get_prediction(start=results.nobs, end=results.nobs + horizon - 1)
    frame = pred.summary_frame(alpha=0.2)
    return {"mean": frame["mean"].tolist(), "q0.1": frame["pi_lower"].tolist(),
            "q0.9": frame["pi_upper"].tolist()}


def main():
    series, dates = load_series()
    os.makedirs(OUT, exist_ok=True)
    train_end = dates[-HOLDOUT - 1]
    bundle, expected = [], []
    actual, naive, means, quantiles = [], [], [], {q: [] for q in QUANTILES}
    for i, (key, y) in enumerate(series.items()):
        train = y[:-HOLDOUT]
        fit, spec, state = fit_series(train, dates[0])
        at_end = {**spec, "initial_level": state["level"], "initial_trend": state["trend"],
                  "initial_seasonal": state["seasonal"]}
        bundle.append({"key": list(key), "last_date": train_end.isoformat(),
                       "mse": float(fit.mse), "nobs": int(fit.nobs), "ets": at_end})
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
    with open(os.path.join(OUT, "ets.json"), "w") as f:
        json.dump({"series": bundle}, f, separators=(",", ":"))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"series": expected}, f, separators=(",", ":"))
    a = np.concatenate(actual)
    print(f"{len(series)} series, last {HOLDOUT} days held out (from {dates[-HOLDOUT]})")
    print(f"seasonal naive WAPE {wape(a, np.concatenate(naive)):.3f}")
    print(f"ETS AAdA WAPE {wape(a, np.concatenate(means)):.3f}, scaled pinball "
          f"{scaled_pinball(a, [np.concatenate(quantiles[q]) for q in QUANTILES], QUANTILES):.3f}")


if __name__ == "__main__":
    main()
