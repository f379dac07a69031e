"""Trains the global neural demand forecaster in PyTorch and exports it for Mercator
(kind `candle` with a `forecaster` section), plus what the parity test checks.

    python train_nn.py     # needs torch, safetensors, numpy; writes net/

One net for every SKU-location. Its input, for a forecast made after day t:
  - the last WINDOW days of sales up to t, divided by their mean (at least 1: the scale),
  - the day of the week of t + 1, one-hot (Monday first),
  - log(1 + scale), so the net knows how big the series is (small series are noisier);
and its output, for each of the next HORIZON days, the mean and the LEVELS quantiles,
in units of the scale. It is trained with squared error on the mean and the pinball
(quantile) loss on the quantiles, on every window that ends before the held-out tail.

Serving multiplies by the scale, sorts each day's quantiles (so they never cross),
interpolates requested levels linearly between the trained ones, and clamps at zero;
`postprocess` below is that reference, and net/expected.json holds its answers (from
PyTorch's outputs) for the parity test. The accuracy printed is on the held-out tail,
next to the seasonal-naive baseline.
"""

import json
import os
import sys

import numpy as np
import torch
from torch import nn

from common import HERE, HOLDOUT, QUANTILES, load_series, scaled_pinball, seasonal_naive, wape

sys.path.insert(0, os.path.join(HERE, "../../python/src"))  # the package, when not installed
from mercator.export import export_mlp  # noqa: E402

WINDOW = 56
HORIZON = 28
LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
OUT = os.path.join(HERE, "net")
PARITY_SERIES = 12
torch.manual_seed(3)
rng = np.random.default_rng(3)


def features(window, next_weekday):
    scale = max(float(window.mean()), 1.0)
    onehot = np.zeros(7)
    onehot[next_weekday] = 1.0
    return np.concatenate([window / scale, onehot, [np.log1p(scale)]]), scale


def postprocess(raw, scale, asked):
    """raw: [HORIZON * (1 + len(LEVELS))] net output -> (mean, {q: values})."""
    out = raw.reshape(HORIZON, 1 + len(LEVELS)).astype(np.float64) * scale
    mean = np.clip(out[:, 0], 0, None)
    levels = np.sort(out[:, 1:], axis=1)
    result = {}
    for q in asked:
        i = np.searchsorted(LEVELS, q, side="right") - 1
        i = min(max(i, 0), len(LEVELS) - 2)
        lo, hi = LEVELS[i], LEVELS[i + 1]
        w = (q - lo) / (hi - lo)
        result[q] = np.clip(levels[:, i] + w * (levels[:, i + 1] - levels[:, i]), 0, None)
    return mean, result


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, 256)
        self.fc2 = nn.Linear(256, 256)
        self.out = nn.Linear(256, HORIZON * (1 + len(LEVELS)))

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def write(net, out_dir):
    """model.safetensors and mercator.json, by the mercator package's MLP exporter: the
    net's layers, the forecaster's signature (a history and its last date in; the mean
    and quantiles out) and the sales view it reads."""
    export_mlp(
        net, out_dir, layers=[net.fc1, "relu", net.fc2, "relu", net.out],
        description="Global demand forecaster: an MLP over 56 days of scaled sales and the "
                    "weekday, trained with pinball loss (examples/demand/train_nn.py)",
        inputs=[{"name": "history", "datatype": "FP32", "shape": [-1, -1]},
                {"name": "last_date", "datatype": "BYTES", "shape": [-1]}],
        outputs=[{"name": "mean", "datatype": "FP32", "shape": [-1, HORIZON]},
                 {"name": "quantiles", "datatype": "FP32", "shape": [-1, HORIZON, 3]}],
        extra={"quantiles": QUANTILES, "quality": {"kind": "forecast"},
               "forecaster": {"window": WINDOW, "horizon": HORIZON, "levels": LEVELS,
                              "features": ["scaled_window", "day_of_week", "log_scale"]},
               "history": {"values": "daily_sales:units", "last_date": "daily_sales:last_date"}},
        overwrite=True)


def main():
    series, dates = load_series()
    weekday = [d.weekday() for d in dates]
    train_len = len(dates) - HOLDOUT
    xs, ys = [], []
    for y in series.values():
        for t in range(WINDOW, train_len - HORIZON + 1):
            x, scale = features(y[t - WINDOW:t], weekday[t])
            xs.append(x)
            ys.append(y[t:t + HORIZON] / scale)
    x = torch.tensor(np.array(xs), dtype=torch.float32)
    y = torch.tensor(np.array(ys), dtype=torch.float32)
    levels = torch.tensor(LEVELS)
    net = Net(x.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    epochs = 40
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for epoch in range(epochs):
        perm = torch.randperm(len(x))
        total = 0.0
        for b in range(0, len(x), 512):
            idx = perm[b:b + 512]
            out = net(x[idx]).view(-1, HORIZON, 1 + len(LEVELS))
            target = y[idx]
            mse = ((out[:, :, 0] - target) ** 2).mean()
            diff = target.unsqueeze(-1) - out[:, :, 1:]
            pinball = torch.maximum(levels * diff, (levels - 1) * diff).mean()
            loss = mse + 2 * pinball
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if epoch % 10 == 9:
            print(f"epoch {epoch + 1}: loss {total / len(x):.4f}")
    net.eval()

    actual, naive, means, quantiles, parity = [], [], [], {q: [] for q in QUANTILES}, []
    asked = [0.1, 0.5, 0.9, 0.3, 0.8]
    for i, (key, y) in enumerate(series.items()):
        history = y[:train_len]
        x_row, scale = features(history[-WINDOW:], weekday[train_len])
        with torch.no_grad():
            raw = net(torch.tensor(x_row, dtype=torch.float32).unsqueeze(0))[0].numpy()
        mean, qs = postprocess(raw, scale, asked)
        actual.append(y[train_len:])
        naive.append(seasonal_naive(history, HOLDOUT))
        means.append(mean)
        for q in QUANTILES:
            quantiles[q].append(qs[q])
        if i < PARITY_SERIES:
            parity.append({"key": list(key), "history": history[-WINDOW - 7:].tolist(),
                           "last_date": dates[train_len - 1].isoformat(), "quantiles": asked,
                           "mean": mean.tolist(), "values": [qs[q].tolist() for q in asked]})

    write(net, OUT)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"series": parity}, f)
    a = np.concatenate(actual)
    print(f"{len(series)} series, last {HOLDOUT} days held out (from {dates[train_len]})")
    print(f"seasonal naive WAPE {wape(a, np.concatenate(naive)):.3f}")
    print(f"neural forecaster WAPE {wape(a, np.concatenate(means)):.3f}, scaled pinball "
          f"{scaled_pinball(a, [np.concatenate(quantiles[q]) for q in QUANTILES], QUANTILES):.3f}")


if __name__ == "__main__":
    main()
