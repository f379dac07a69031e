"""Generates the synthetic post-purchase dataset and trains the demo `churn` model.

Writes, next to this script:
  customers.csv   one row per customer: id, features, churn label (seeded, reproducible)
  model.json      the XGBoost model (xgboost's own JSON format)
  mercator.json   the manifest Mercator registers with it
  expected.json   a few held-out rows with xgboost's predictions, for the serving tests

    pip install ./python && python examples/churn/train_churn.py   # from the repository root

The model and its manifest are written by the mercator package's XGBoost exporter.
"""

import csv
import json
import os
import sys

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../python/src"))  # the package, when not installed
from mercator.export import export_xgboost  # noqa: E402
N = 12_000
rng = np.random.default_rng(20261125)

FEATURES = [
    "days_since_last_order",
    "orders_90d",
    "spend_90d",
    "avg_order_value",
    "return_rate",
    "late_deliveries_90d",
    "support_tickets_90d",
    "last_nps",
    "discount_share",
    "tenure_days",
    "app_sessions_30d",
    "email_open_rate",
]


def generate():
    tenure = rng.gamma(2.0, 300.0, N).clip(7, 3650)
    engagement = rng.normal(0, 1, N)  # latent: how attached a customer is
    orders = rng.poisson(np.exp(0.6 + 0.5 * engagement).clip(0.1, 20))
    aov = rng.lognormal(3.8, 0.5, N)
    spend = np.where(orders > 0, orders * aov * rng.lognormal(0, 0.15, N), 0.0)
    days_since = np.where(
        orders > 0,
        rng.exponential(90 / (1 + orders), N).clip(0, 90),
        90 + rng.exponential(120, N),
    ).clip(0, 730)
    return_rate = rng.beta(1.2, 8.0, N)
    late = rng.poisson(0.15 * (orders + 0.5))
    tickets = rng.poisson(0.1 + 0.4 * late + 2.0 * return_rate)
    nps = np.clip(np.round(7.5 + 1.2 * engagement - 1.0 * late - 4 * return_rate + rng.normal(0, 1.5, N)), 0, 10)
    nps = np.where(rng.random(N) < 0.45, np.nan, nps)  # most customers never answer the survey
    discount = rng.beta(1.5, 4.0, N)
    sessions = rng.poisson(np.exp(1.2 + 0.7 * engagement).clip(0.05, 60))
    email = rng.beta(2 + engagement.clip(-1.5, 3), 5)

    logit = (
        -1.2
        + 0.012 * days_since
        - 0.25 * orders
        + 3.0 * return_rate
        + 0.45 * late
        + 0.35 * tickets
        - 0.25 * np.nan_to_num(nps - 7, nan=0.0)
        + 1.6 * discount
        - 0.0008 * tenure
        - 0.05 * sessions
        - 1.5 * email
    )
    churned = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.column_stack(
        [days_since, orders, spend, np.where(orders > 0, spend / np.maximum(orders, 1), 0.0), return_rate,
         late, tickets, nps, discount, tenure, sessions, email]
    ).astype(np.float32)
    return x, churned


# First matching rule wins: late deliveries among the two largest drivers of a high risk
# get an apology, an unhappy
# high-risk customer a call from care, a medium risk a loyalty reminder.
RUNBOOK = [
    {"rule": "late_deliveries", "band": "high", "top_reason": "late_deliveries_90d",
     "within": 2, "action": "apology_voucher"},
    {"rule": "unhappy_customer", "band": "high", "feature": "last_nps", "below": 7,
     "action": "callback_from_care"},
    {"rule": "medium_risk", "band": "medium", "action": "loyalty_reminder"},
]


def write(booster, out_dir, rows, auc):
    """model.json and mercator.json: the customer_churn view feeds the inputs (a missing
    value stays NaN, as the model saw missing NPS in training); the risk bands and the
    runbook (which action each score calls for) drive the Churn API."""
    export_xgboost(
        booster, out_dir, view="customer_churn", margin=True,
        output_names=["churn_probability", "churn_margin"], max_batch_size=4096,
        description="Churn risk from post-purchase signals (synthetic demo data)",
        extra={"risk_bands": {"low": 0.0, "medium": 0.3, "high": 0.6},
               "runbook": RUNBOOK,
               "quality": {"kind": "binary", "window": "90d"},
               "training": {"library": "xgboost " + xgb.__version__, "rows": rows,
                            "holdout_auc": round(auc, 4)}},
        overwrite=True)


def main():
    x, y = generate()
    ids = [f"C{100000 + i}" for i in range(N)]
    with open(os.path.join(HERE, "customers.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", *FEATURES, "churned"])
        for cid, row, label in zip(ids, x, y):
            w.writerow([cid, *["" if np.isnan(v) else f"{v:.6g}" for v in row], label])

    split = int(N * 0.8)
    dtrain = xgb.DMatrix(x[:split], label=y[:split], feature_names=FEATURES, missing=np.nan)
    dtest = xgb.DMatrix(x[split:], label=y[split:], feature_names=FEATURES, missing=np.nan)
    params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 4, "eta": 0.08,
              "subsample": 0.9, "colsample_bytree": 0.9, "seed": 11}
    booster = xgb.train(params, dtrain, num_boost_round=200)
    pred = booster.predict(dtest)
    auc = float(booster.eval(dtest).split(":")[1])
    write(booster, HERE, split, auc)

    rows = x[split:split + 64]
    expected = {
        "customer_ids": ids[split:split + 64],
        "inputs": [[None if np.isnan(v) else float(v) for v in r] for r in rows],
        "churn_probability": [float(p) for p in booster.predict(xgb.DMatrix(rows, feature_names=FEATURES, missing=np.nan))],
        "churn_margin": [float(p) for p in booster.predict(xgb.DMatrix(rows, feature_names=FEATURES, missing=np.nan), output_margin=True)],
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"churn rate {y.mean():.3f}, holdout AUC {auc:.4f}, mean p {pred.mean():.3f}")


if __name__ == "__main__":
    main()
