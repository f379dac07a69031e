"""A pair of XGBoost classifiers as one `uplift` version (a T-learner): one trained on the
customers who got an action, one on those who did not, both on the same features and the
same binary outcome. The server answers `p_treated`, `p_control` and `uplift`."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Mapping, Optional, Sequence

from ._folder import bindings, write_version
from .xgboost import _booster


def _booster_json(model, feature_names) -> tuple[dict, list, str]:
    booster = _booster(model)
    if feature_names is not None:
        booster.feature_names = list(feature_names)
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if objective not in ("binary:logistic", "reg:logistic"):
        raise ValueError(f"objective {objective!r}: an uplift model's boosters predict a probability "
                         "(binary:logistic)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        booster.save_model(path)
        with open(path) as f:
            document = json.load(f)
    return document, list(booster.feature_names or []), objective


def export_uplift(treated, control, out_dir: str, *, favourable_outcome: int = 1,
                  feature_names: Optional[Sequence[str]] = None, input_name: str = "features",
                  view: Optional[str] = None, description: str = "", max_batch_size: int = 0,
                  extra: Optional[Mapping] = None, overwrite: bool = False) -> str:
    """Writes the two classifiers (`XGBClassifier`s or `Booster`s with a logistic
    objective) into `out_dir` as one version: `uplift.json` holds both boosters.

    `treated` was fitted on the customers given the action, `control` on those held out,
    with the same features in the same order (checked). `favourable_outcome` is the class
    the action should make likelier: 1 (a purchase; uplift = p_treated − p_control) or 0
    (churn; uplift = p_control − p_treated, the fall in churn). `view` binds each column to
    that feature view's field of the same name, so callers send customer ids.
    """
    if favourable_outcome not in (0, 1):
        raise ValueError("favourable_outcome is 0 or 1")
    t, t_names, _ = _booster_json(treated, feature_names)
    c, c_names, _ = _booster_json(control, feature_names)
    if t_names != c_names:
        raise ValueError(f"the boosters read different features: {t_names} vs {c_names}")
    width = int(t["learner"]["learner_model_param"]["num_feature"])
    if width != int(c["learner"]["learner_model_param"]["num_feature"]):
        raise ValueError("the boosters read a different number of features")
    if view and not t_names:
        raise ValueError("binding to a view needs feature names")
    model_input = {"name": input_name, "datatype": "FP32", "shape": [-1, width], "allow_nan": True}
    if t_names:
        model_input["feature_names"] = t_names
    if view:
        model_input["features"] = bindings(view, t_names)
    weights = json.dumps({"format": "mercator-uplift", "treated": t, "control": c}).encode()
    manifest = {
        "kind": "uplift",
        "weights": "uplift.json",
        "description": description or "Two-model (T-learner) uplift, exported by the mercator package",
        "inputs": [model_input],
        "outputs": [{"name": n, "datatype": "FP32", "shape": [-1]} for n in ("p_treated", "p_control", "uplift")],
        "favourable_outcome": favourable_outcome,
    }
    if max_batch_size:
        manifest["max_batch_size"] = max_batch_size
    manifest.update(extra or {})
    return write_version(out_dir, manifest, {"uplift.json": weights}, overwrite)
