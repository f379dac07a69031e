"""Accuracy of simple forecasters on the held-out last 28 days of sales.csv, per series:
seasonal naive (repeat the last week) and ETS (additive error, damped trend, additive
weekly seasonality, fitted by statsmodels on the days before). Reports WAPE (sum of
absolute errors over sum of sales; MAPE is undefined on stock-out zeros) and, for ETS,
the mean pinball loss over the 0.1/0.5/0.9 quantiles, scaled by mean sales.

    python evaluate_baselines.py     # needs statsmodels, pandas, numpy
"""

import os
import warnings

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

warnings.simplefilter("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
H = 28
QS = [0.1, 0.5, 0.9]

sales = pd.read_csv(os.path.join(HERE, "sales.csv"), parse_dates=["date"])
abs_naive = abs_ets = total = pinball = 0.0
n_series = 0
for (_, _), g in sales.groupby(["sku_id", "location_id"]):
    y = g.sort_values("date").set_index("date")["units"].astype(float).asfreq("D")
    train, test = y[:-H], y[-H:].to_numpy()
    naive = np.tile(train[-7:].to_numpy(), H // 7)
    fit = ETSModel(train, error="add", trend="add", damped_trend=True, seasonal="add",
                   seasonal_periods=7).fit(disp=False)
    pred = fit.get_prediction(start=len(train), end=len(train) + H - 1)
    mean = np.clip(np.asarray(pred.predicted_mean), 0, None)
    sd = np.sqrt(np.asarray(pred.var_pred_mean))
    for q in QS:
        qv = np.clip(mean + norm.ppf(q) * sd, 0, None)
        diff = test - qv
        pinball += np.maximum(q * diff, (q - 1) * diff).sum() / len(QS)
    abs_naive += np.abs(test - naive).sum()
    abs_ets += np.abs(test - mean).sum()
    total += test.sum()
    n_series += 1
print(f"{n_series} series, last {H} days held out")
print(f"seasonal naive WAPE {abs_naive / total:.3f}")
print(f"ETS (AAdA) WAPE {abs_ets / total:.3f}, scaled pinball {pinball / total:.3f}")
