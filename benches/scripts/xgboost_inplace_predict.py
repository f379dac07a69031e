"""xgboost's own speed on the demo churn model: inplace_predict on the first 10,000
customers of examples/churn/customers.csv, one thread, best of several runs.

    python benches/scripts/xgboost_inplace_predict.py
"""

import csv
import os
import time

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
CHURN = os.path.join(HERE, "..", "..", "examples", "churn")

with open(os.path.join(CHURN, "customers.csv")) as f:
    reader = csv.reader(f)
    next(reader)
    rows = [[float(v) if v else np.nan for v in r[1:13]] for _, r in zip(range(10_000), reader)]
x = np.array(rows, dtype=np.float32)
booster = xgb.Booster(model_file=os.path.join(CHURN, "model.json"))
booster.set_param({"nthread": 1})

for label, data in (("10k rows", x), ("1 row", x[:1])):
    booster.inplace_predict(data)  # warm-up
    reps = 20 if len(data) > 1 else 2000
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            booster.inplace_predict(data)
        best = min(best, (time.perf_counter() - t0) / reps)
    print(f"xgboost {xgb.__version__} inplace_predict {label}: {best * 1e6:.1f} us/call, {len(data) / best:,.0f} rows/s")
