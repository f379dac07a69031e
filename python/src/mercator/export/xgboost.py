"""XGBoost boosters (or their scikit-learn wrappers) as `xgboost` versions: the model in
XGBoost's JSON format, and a manifest naming the input's columns after the booster's
feature names, with the outputs its objective predicts."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Mapping, Optional, Sequence

from ._folder import bindings, write_version


def _booster(model):
    return model.get_booster() if hasattr(model, "get_booster") else model


def export_xgboost(model, out_dir: str, *, feature_names: Optional[Sequence[str]] = None,
                   input_name: str = "features", view: Optional[str] = None,
                   margin: bool = False, output_names: Optional[Sequence[str]] = None,
                   description: str = "", max_batch_size: int = 0, extra: Optional[Mapping] = None,
                   overwrite: bool = False) -> str:
    """Writes `model` (an `xgboost.Booster` or an `XGBClassifier`/`XGBRegressor`) into
    `out_dir` as a version folder.

    `feature_names` defaults to the booster's own (they are written into the model too, so
    the server checks them); `view` binds each column to that feature view's field of the
    same name, so callers can send entity ids. `margin` adds the raw margin as a second
    output (binary and regression objectives). `output_names` renames the outputs, in
    order; `extra` adds manifest sections (`risk_bands` for the Churn API, `training`).
    """
    booster = _booster(model)
    if feature_names is not None:
        booster.feature_names = list(feature_names)
    names = list(booster.feature_names or [])
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    classes = int(config["learner"]["learner_model_param"].get("num_class", "0") or 0)
    width = booster.num_features()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        booster.save_model(path)
        with open(path, "rb") as f:
            weights = f.read()
    if objective in ("binary:logistic", "reg:logistic"):
        outputs = [("probability", [-1])]
    elif objective == "multi:softprob":
        outputs = [("probabilities", [-1, classes])]
    elif objective == "multi:softmax":
        outputs = [("class", [-1])]
    else:
        outputs = [("prediction", [-1])]
    manifest_outputs = [{"name": n, "datatype": "FP32", "shape": s, "value": "prediction"} for n, s in outputs]
    if margin:
        if objective.startswith("multi:"):
            raise ValueError("margin output is for single-output objectives")
        manifest_outputs.append({"name": "margin", "datatype": "FP32", "shape": [-1], "value": "margin"})
    if output_names is not None:
        if len(output_names) != len(manifest_outputs):
            raise ValueError(f"{len(output_names)} output names for {len(manifest_outputs)} outputs")
        for out, name in zip(manifest_outputs, output_names):
            out["name"] = name
    if view and not names:
        raise ValueError("binding to a view needs feature names")
    model_input = {"name": input_name, "datatype": "FP32", "shape": [-1, width], "allow_nan": True}
    if names:
        model_input["feature_names"] = names
    if view:
        model_input["features"] = bindings(view, names)
    manifest = {
        "kind": "xgboost",
        "weights": "model.json",
        "description": description or f"XGBoost {objective} model, exported by the mercator package",
        "inputs": [model_input],
        "outputs": manifest_outputs,
    }
    if max_batch_size:
        manifest["max_batch_size"] = max_batch_size
    manifest.update(extra or {})
    return write_version(out_dir, manifest, {"model.json": weights}, overwrite)
