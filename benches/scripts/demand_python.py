"""Times the Python side of the demo demand forecasters, for comparison with the
`kinds` bench (demand_net_*, demand_ets_*): the neural net in PyTorch (eval mode, no
grad, one thread) with train_nn.py's post-processing, on 1 and 256 series; and
statsmodels doing what the ETS bundle does for one series (smooth the 365 days with the
fitted parameters, then a 28-day forecast with intervals).

    python benches/scripts/demand_python.py    # needs torch, safetensors, statsmodels
"""

import os
import sys
import timeit
import warnings

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "examples", "demand"))
import train_nn  # noqa: E402
from common import load_series  # noqa: E402
from train_ets import fit_series  # noqa: E402

warnings.simplefilter("ignore")
torch.set_num_threads(1)


def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


series, dates = load_series()
net = train_nn.Net(train_nn.WINDOW + 8)
net.load_state_dict(load_file(os.path.join(ROOT, "examples/demand/net/model.safetensors")))
net.eval()
rows = [train_nn.features(y[-train_nn.WINDOW:], 6) for y in list(series.values())]


def forecast(n):
    x = np.array([r[0] for r in rows[:n]] * (1 + n // len(rows)))[:n]
    with torch.no_grad():
        out = net(torch.tensor(x, dtype=torch.float32)).numpy()
    for i in range(n):
        train_nn.postprocess(out[i], rows[i % len(rows)][1], [0.1, 0.5, 0.9])


for n in (1, 256):
    t = best(lambda: forecast(n), 200 if n == 1 else 10)
    print(f"PyTorch neural forecaster, {n} series: {t * 1e6:.1f} µs ({t / n * 1e6:.1f} µs per series)")

y = next(iter(series.values()))
fit, _, _ = fit_series(y[:-28], dates[0])
full = pd.Series(y, index=pd.date_range(dates[0], periods=len(y), freq="D"))
model = ETSModel(full, error="add", trend="add", damped_trend=True, seasonal="add",
                 seasonal_periods=7, initialization_method="estimated")


def ets():
    r = model.smooth(fit.params)
    r.get_prediction(start=r.nobs, end=r.nobs + 27).summary_frame(alpha=0.2)


t = best(ets, 20)
print(f"statsmodels ETS smooth + 28-day forecast with intervals, 1 series: {t * 1e6:.0f} µs")
