"""The truth behind the demo's voucher campaign: how likely a customer is to churn, with
and without an apology voucher. The voucher helps only customers who had a late
delivery (it lowers their churn log-odds by 1.5); for everyone else it changes nothing.

`train_uplift.py` draws the campaign's history from it, and the README draws the
outcomes of a live campaign from it, so the experiment report has a known answer.
"""

import numpy as np

FEATURES = [
    "days_since_last_order", "orders_90d", "spend_90d", "avg_order_value", "return_rate",
    "late_deliveries_90d", "support_tickets_90d", "last_nps", "discount_share", "tenure_days",
    "app_sessions_30d", "email_open_rate",
]
# What the voucher does to a late-delivery customer's churn log-odds.
VOUCHER_EFFECT = -1.5


def churn_probability(x, treated):
    """P(churn within 90 days) of each row of `x` (the FEATURES, NaN for an unanswered NPS),
    given the voucher or not (`treated`, booleans)."""
    x = np.asarray(x, dtype=float)
    f = {name: x[:, i] for i, name in enumerate(FEATURES)}
    logit = (-1.2 + 0.012 * f["days_since_last_order"] - 0.25 * f["orders_90d"]
             + 3.0 * f["return_rate"] + 0.45 * f["late_deliveries_90d"]
             + 0.35 * f["support_tickets_90d"] - 0.25 * np.nan_to_num(f["last_nps"] - 7, nan=0.0)
             + 1.6 * f["discount_share"] - 0.0008 * f["tenure_days"]
             - 0.05 * f["app_sessions_30d"] - 1.5 * f["email_open_rate"])
    helped = (f["late_deliveries_90d"] >= 1) & np.asarray(treated, dtype=bool)
    return 1.0 / (1.0 + np.exp(-(logit + np.where(helped, VOUCHER_EFFECT, 0.0))))


def features(customers_csv, ids=None):
    """The FEATURES of the customers in `customers_csv` (all, or those in `ids`, in order),
    as a float array with NaN for blanks, and their ids."""
    import csv
    rows = {}
    with open(customers_csv, newline="") as f:
        for r in csv.DictReader(f):
            rows[r["customer_id"]] = [float(r[c]) if r[c] != "" else np.nan for c in FEATURES]
    ids = list(rows) if ids is None else list(ids)
    return np.array([rows[i] for i in ids], dtype=float), ids
