"""TreeSHAP's cost per row: the runtime's `XgbModel::contributions` against xgboost's own
`predict(..., pred_contribs=True)`, one thread each, the same model and rows, one run.

    cargo build --release -p mercator-benches --bin shap_cost
    python benches/scripts/shap_cost.py [--rows 2000]

The model: 100 trees of depth 6 over 32 float32 features, trained here on seeded random
data (with 5% missing values, so default directions are taken). A benchmark: it prints
times and their ratio, and asserts nothing.
"""

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np
import xgboost as xgb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FEATURES = 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "shap_cost"))
    args = ap.parse_args()
    rng = np.random.default_rng(17)
    x = rng.normal(size=(20_000, FEATURES)).astype(np.float32)
    y = (x[:, 0] + np.sin(x[:, 1]) + x[:, 2] * x[:, 3] + rng.normal(scale=0.5, size=len(x)) > 0)
    x[rng.random(size=x.shape) < 0.05] = np.nan
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 1,
                         "seed": 3}, xgb.DMatrix(x, label=y.astype(np.float32), missing=np.nan),
                        num_boost_round=100)
    rows = rng.normal(size=(args.rows, FEATURES)).astype(np.float32)
    rows[rng.random(size=rows.shape) < 0.05] = np.nan
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.json")
        booster.save_model(model)
        data = os.path.join(tmp, "rows.f32")
        rows.astype("<f4").tofile(data)
        booster.set_param({"nthread": 1})
        d = xgb.DMatrix(rows, missing=np.nan)
        booster.predict(d, pred_contribs=True)  # warm-up
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            booster.predict(d, pred_contribs=True)
            best = min(best, time.perf_counter() - t0)
        theirs = best / args.rows * 1e6
        ours = float(subprocess.run([args.bin, model, data, str(FEATURES)], check=True,
                                    capture_output=True, text=True).stdout)
    print(f"100 trees of depth 6, {FEATURES} features, {args.rows} rows, one thread:")
    print(f"  xgboost {xgb.__version__} pred_contribs: {theirs:.1f} us/row")
    print(f"  mercator contributions:           {ours:.1f} us/row ({ours / theirs:.2f}x xgboost's time)")


if __name__ == "__main__":
    main()
