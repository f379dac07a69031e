"""The demo's voucher campaign and the uplift model trained on it.

A past campaign sent an apology voucher to a random half of 8,000 customers (the first
8,000 of customers.csv) and recorded who churned within 90 days (drawn from
`campaign.py`: the voucher helps only customers with a late delivery). From it, a
two-model (T-learner) uplift model: one XGBoost classifier on the treated customers, one
on the held-out ones, both predicting churn; the uplift is the fall in churn the voucher
brings (`favourable_outcome` 0: churn is what the voucher should make less likely).

Writes, next to this script:
  campaign_history.csv   customer_id, treated, churned (features: customers.csv)
  uplift/                the version folder (uplift.json, mercator.json), exported by the
                         mercator package's `export_uplift`
  uplift/expected.json   held-out rows with both classifiers' predict_proba, for the tests
  campaign.json          the manifest of the demo churn model with the campaign's runbook

    pip install ./python && python examples/churn/train_uplift.py   # from the repository root
"""

import csv
import json
import os
import sys

import numpy as np
from xgboost import XGBClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../python/src"))  # the package, when not installed
sys.path.insert(0, HERE)
from campaign import FEATURES, churn_probability, features  # noqa: E402
from mercator.export import export_uplift  # noqa: E402

HISTORY = 8_000
TRAIN = 6_000


def classifier():
    return XGBClassifier(n_estimators=150, max_depth=3, learning_rate=0.08, subsample=0.9,
                         colsample_bytree=0.9, random_state=7, objective="binary:logistic")


def main():
    rng = np.random.default_rng(20261207)
    x, ids = features(os.path.join(HERE, "customers.csv"))
    x, ids = x[:HISTORY], ids[:HISTORY]
    treated = rng.random(HISTORY) < 0.5
    churned = (rng.random(HISTORY) < churn_probability(x, treated)).astype(int)
    with open(os.path.join(HERE, "campaign_history.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "treated", "churned"])
        w.writerows(zip(ids, treated.astype(int), churned))

    train, test = slice(0, TRAIN), slice(TRAIN, HISTORY)
    t_rows, c_rows = treated[train], ~treated[train]
    xt, yt = x[train][t_rows], churned[train][t_rows]
    xc, yc = x[train][c_rows], churned[train][c_rows]
    treated_model = classifier().fit(xt.astype(np.float32), yt)
    control_model = classifier().fit(xc.astype(np.float32), yc)
    for m in (treated_model, control_model):
        m.get_booster().feature_names = FEATURES

    held = x[test].astype(np.float32)
    p_t = treated_model.predict_proba(held)[:, 1]
    p_c = control_model.predict_proba(held)[:, 1]
    uplift = p_c - p_t
    qini = None
    try:
        from sklift.metrics import qini_auc_score
        retained = 1 - churned[test]
        qini = (qini_auc_score(retained, uplift, treated[test].astype(int)),
                qini_auc_score(retained, p_c, treated[test].astype(int)))
    except ImportError:
        pass

    out = os.path.join(HERE, "uplift")
    export_uplift(treated_model, control_model, out, favourable_outcome=0, view="customer_churn",
                  max_batch_size=4096,
                  description="Apology voucher uplift: the fall in churn it brings (synthetic demo campaign)",
                  extra={"training": {"rows": TRAIN, "treated_share": 0.5,
                                      "holdout_qini": None if qini is None else round(qini[0], 4)}},
                  overwrite=True)
    expected = {
        "customer_ids": ids[TRAIN:TRAIN + 64],
        "inputs": [[None if np.isnan(v) else float(v) for v in r] for r in held[:64]],
        "p_treated": [float(v) for v in p_t[:64]],
        "p_control": [float(v) for v in p_c[:64]],
        "uplift": [float(v) for v in (p_c[:64].astype(np.float64) - p_t[:64])],
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    with open(os.path.join(out, ".mercatorignore"), "w") as f:
        f.write("expected.json\n")

    # The campaign: the demo churn model, its runbook replaced by the voucher's. Customers
    # the voucher helps by more than 5 points get it (half held out to prove it works);
    # everyone else is a second experiment, only to show the voucher does nothing for
    # them (a real runbook would leave them out). Judged after 20 seconds, so the README
    # can show the report: a real campaign says 90d.
    with open(os.path.join(HERE, "mercator.json")) as f:
        manifest = json.load(f)
    manifest["description"] = "The demo churn model with the voucher campaign's runbook"
    manifest["runbook"] = [
        {"rule": "voucher_where_it_works", "uplift_above": 0.05, "action": "apology_voucher",
         "control": 0.5, "experiment": "voucher_targeted"},
        {"rule": "voucher_elsewhere", "action": "apology_voucher", "control": 0.5,
         "experiment": "voucher_untargeted"},
    ]
    manifest["uplift_model"] = "churn_uplift"
    manifest["action_costs"] = {"apology_voucher": 5.0}
    manifest["quality"] = {"kind": "binary", "window": "20s"}
    manifest.pop("training", None)
    with open(os.path.join(HERE, "campaign.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    late = x[test][:, FEATURES.index("late_deliveries_90d")] >= 1
    print(f"history churn: treated {churned[treated].mean():.3f}, control {churned[~treated].mean():.3f}")
    print(f"held-out mean uplift: late deliveries {uplift[late].mean():+.3f}, others {uplift[~late].mean():+.3f}")
    if qini:
        print(f"held-out Qini (scikit-uplift): uplift {qini[0]:.4f}, risk {qini[1]:.4f}")


if __name__ == "__main__":
    main()
