"""statsmodels ETS fits (`ETSModel(...).fit()` results) as `ets` versions.

One fit becomes a single-series model whose artifact holds the fitted parameters and the
states *before* the first observation: a caller sends the series from its first day and
the server filters it, as statsmodels does. Many fits (one per SKU-location) become a
bundle whose entries hold the states *after the last observation*, so the server only
filters the days that came since and a caller (or the feature store) sends recent days.

statsmodels reports the initial seasonal states in an order that is not the order the
recursions consume them; rather than trust either, each export runs the textbook
recursions from both orders and keeps the one that reproduces statsmodels' own fitted
values (and refuses the fit if neither does), so the artifact is proven on the data.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._folder import write_version

QUANTILES = (0.1, 0.5, 0.9)


def _spec(results) -> dict:
    model = results.model
    if model.error != "add":
        raise ValueError(f"error '{model.error}' is not supported: Mercator serves additive errors")
    trend = "none" if model.trend is None else ("damped" if model.damped_trend else "add")
    seasonal = model.seasonal or "none"
    spec = {"error": "add", "trend": trend, "seasonal": seasonal,
            "alpha": float(results.smoothing_level), "initial_level": float(results.initial_level)}
    if trend != "none":
        spec["beta"] = float(results.smoothing_trend)
        spec["initial_trend"] = float(results.initial_trend)
    if trend == "damped":
        spec["phi"] = float(results.damping_trend)
    if seasonal != "none":
        spec["gamma"] = float(results.smoothing_seasonal)
        spec["seasonal_periods"] = int(model.seasonal_periods)
    return spec


def _filter(spec: dict, y) -> Tuple[np.ndarray, dict]:
    """One-step predictions over `y` and the states after it (Hyndman et al. 2008)."""
    a, b, g = spec["alpha"], spec.get("beta", 0.0), spec.get("gamma", 0.0)
    phi = spec.get("phi", 1.0)
    trend, seasonal = spec["trend"], spec["seasonal"]
    level, slope = spec["initial_level"], spec.get("initial_trend", 0.0)
    season = list(spec.get("initial_seasonal", []))
    preds = np.empty(len(y))
    for i, obs in enumerate(y):
        base = level + (phi * slope if trend != "none" else 0.0)
        s = season[0] if seasonal != "none" else 0.0
        yhat = base + s if seasonal == "add" else base * s if seasonal == "mul" else base
        e = obs - yhat
        preds[i] = yhat
        div = s if seasonal == "mul" else 1.0
        level = base + a * e / div
        slope = phi * slope + b * e / div if trend != "none" else 0.0
        if seasonal != "none":
            season = season[1:] + [s + g * e / (base if seasonal == "mul" else 1.0)]
    state = {"initial_level": level, "initial_trend": slope, "initial_seasonal": season}
    return preds, state


def _checked_spec(results) -> Tuple[dict, np.ndarray]:
    """The spec with the seasonal order that reproduces statsmodels' fitted values."""
    spec = _spec(results)
    y = np.asarray(results.model.endog, dtype=float).ravel()
    fitted = np.asarray(results.fittedvalues, dtype=float).ravel()
    scale = max(1.0, float(np.abs(fitted).max()))
    candidates = [None]
    if spec["seasonal"] != "none":
        raw = [float(v) for v in np.asarray(results.initial_seasonal).ravel()]
        candidates = [raw, raw[::-1]]
    best, best_miss = None, np.inf
    for seasonal in candidates:
        trial = dict(spec)
        if seasonal is not None:
            trial["initial_seasonal"] = seasonal
        miss = float(np.abs(_filter(trial, y)[0] - fitted).max())
        if miss < best_miss:
            best, best_miss = trial, miss
    if not best_miss <= 1e-6 * scale:
        raise ValueError(f"the exported recursions miss statsmodels' fitted values by {best_miss:g}")
    return best, y


def _last_date(results, last_date) -> str:
    if last_date is not None:
        return last_date if isinstance(last_date, str) else last_date.isoformat()[:10]
    index = getattr(results.model.data, "row_labels", None)
    if index is None or not hasattr(index[-1], "date"):
        raise ValueError("the fit's series has no dates: pass last_date")
    return index[-1].date().isoformat()


def _manifest(kind_inputs, horizon, quantiles, description, max_batch_size, history):
    q = [float(x) for x in quantiles]
    manifest = {
        "kind": "ets",
        "weights": "ets.json",
        "description": description,
        "inputs": kind_inputs,
        "outputs": [{"name": "mean", "datatype": "FP64", "shape": [-1, horizon]},
                    {"name": "quantiles", "datatype": "FP64", "shape": [-1, horizon, len(q)]}],
        "quantiles": q,
    }
    if history:
        manifest["history"] = dict(history)
    if max_batch_size:
        manifest["max_batch_size"] = max_batch_size
    return manifest


def export_ets(results, out_dir: str, *, horizon: int = 28, quantiles: Sequence[float] = QUANTILES,
               description: str = "", overwrite: bool = False) -> str:
    """Writes one fit as a single-series `ets` version: requests send the series from the
    day the fit started (input `history`, FP64 `[rows, days]`)."""
    spec, _ = _checked_spec(results)
    inputs = [{"name": "history", "datatype": "FP64", "shape": [-1, -1]}]
    manifest = _manifest(inputs, horizon, quantiles,
                         description or f"ETS({spec['error']},{spec['trend']},{spec['seasonal']}) from statsmodels",
                         0, None)
    return write_version(out_dir, manifest, {"ets.json": json.dumps(spec).encode()}, overwrite)


Key = Union[str, Tuple[str, ...]]


def export_ets_bundle(fits: Mapping[Key, object], out_dir: str, *,
                      key_names: Sequence[str] = ("sku_id", "location_id"),
                      last_dates: Optional[Mapping[Key, Union[str, _dt.date]]] = None,
                      horizon: int = 28, quantiles: Sequence[float] = QUANTILES,
                      history: Optional[Mapping[str, str]] = None, description: str = "",
                      max_batch_size: int = 4096, extra: Optional[Mapping] = None,
                      overwrite: bool = False) -> str:
    """Writes many fits, one per series keyed by `key_names` (a SKU and a location by
    default), as one `ets` bundle. Each entry keeps the states after its series' last day
    (from the fit's date index, or `last_dates`); requests send the series' keys, its
    recent days and the date of the last one. `history` binds the feature store's view,
    e.g. `{"values": "daily_sales:units", "last_date": "daily_sales:last_date"}`; `extra`
    adds manifest sections (`quality`)."""
    series = []
    for key, results in fits.items():
        parts = [key] if isinstance(key, str) else list(key)
        if len(parts) != len(key_names):
            raise ValueError(f"key {key!r} has {len(parts)} parts; key_names has {len(key_names)}")
        spec, y = _checked_spec(results)
        _, state = _filter(spec, y)
        at_end = {**spec, **state}
        if spec["trend"] == "none":
            at_end.pop("initial_trend")
        if spec["seasonal"] == "none":
            at_end.pop("initial_seasonal")
        day = _last_date(results, (last_dates or {}).get(key))
        series.append({"key": [str(p) for p in parts], "last_date": day,
                       "mse": float(results.mse), "nobs": int(results.nobs), "ets": at_end})
    if not series:
        raise ValueError("no fits to export")
    inputs = [{"name": k, "datatype": "BYTES", "shape": [-1]} for k in key_names]
    inputs += [{"name": "history", "datatype": "FP64", "shape": [-1, -1]},
               {"name": "last_date", "datatype": "BYTES", "shape": [-1]}]
    manifest = _manifest(inputs, horizon, quantiles,
                         description or f"{len(series)} ETS models from statsmodels, one per series",
                         max_batch_size, history)
    manifest.update(extra or {})
    payload = json.dumps({"series": series}, separators=(",", ":")).encode()
    return write_version(out_dir, manifest, {"ets.json": payload}, overwrite)
