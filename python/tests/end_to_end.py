"""The mercator package against a running demo server, end to end: each exporter's folder
is registered with the `mercator` CLI, served, and must answer what the training library
itself predicts; the client's calls must answer what the demo models say.

    python end_to_end.py GRPC_ADDR MERCATOR_BIN SERVER_URL

Needs the package and python/requirements-test.txt installed (xgboost, statsmodels,
torch, safetensors) and tritonclient[grpc].
"""

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

import mercator
from mercator import text as pipeline
from mercator.export import export_ets, export_ets_bundle, export_mlp, export_text, export_uplift, export_xgboost

warnings.simplefilter("ignore")
ADDR, MERCATOR, URL = sys.argv[1:4]
v2 = grpcclient.InferenceServerClient(ADDR)
client = mercator.Client(ADDR)
results = []
WORK = tempfile.mkdtemp(prefix="mercator-py-")


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print("ok  ", fn.__name__)
    except Exception:  # noqa: BLE001 - report every failure, keep going
        results.append((fn.__name__, traceback.format_exc()))
        print("FAIL", fn.__name__)
        print(traceback.format_exc())


def register(name, folder):
    """`mercator models register` as a user runs it, then waits until it is served."""
    out = subprocess.run([MERCATOR, "models", "--server", URL, "register", name, folder,
                          "--alias", "champion"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for _ in range(300):
        if v2.is_model_ready(name):
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} was never served")


def infer(name, *tensors):
    inputs = []
    for tname, array, dtype in tensors:
        i = grpcclient.InferInput(tname, list(array.shape), dtype)
        i.set_data_from_numpy(array)
        inputs.append(i)
    return v2.infer(name, inputs)


def close(got, want, tol):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = float(np.abs(got - want).max())
    assert diff <= tol, f"max abs diff {diff} > {tol}"


def test_xgboost_binary_with_feature_names():
    import xgboost as xgb

    rng = np.random.default_rng(5)
    names = ["recency", "frequency", "monetary", "returns", "nps"]
    x = rng.normal(size=(600, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 3]) + rng.normal(0, 0.5, 600) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.2},
                        xgb.DMatrix(x, label=y, feature_names=names, missing=np.nan), num_boost_round=40)
    folder = export_xgboost(booster, os.path.join(WORK, "xgb"), margin=True)
    register("py_xgb", folder)
    test = x[:64]
    res = infer("py_xgb", ("features", test, "FP32"))
    dm = xgb.DMatrix(test, feature_names=names, missing=np.nan)
    close(res.as_numpy("probability"), booster.predict(dm), 1e-6)
    close(res.as_numpy("margin"), booster.predict(dm, output_margin=True), 1e-5)
    meta = v2.get_model_metadata("py_xgb")
    assert [o.name for o in meta.outputs] == ["probability", "margin"], meta


def test_xgboost_sklearn_multiclass():
    import xgboost as xgb

    rng = np.random.default_rng(6)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5])
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)
    folder = export_xgboost(model, os.path.join(WORK, "xgb3"), feature_names=["a", "b", "c", "d"])
    register("py_xgb3", folder)
    res = infer("py_xgb3", ("features", x[:50], "FP32"))
    close(res.as_numpy("probabilities"), model.predict_proba(x[:50]), 1e-6)


def test_uplift_pair_of_classifiers():
    """Two XGBClassifiers exported in one call serve both probabilities and their
    difference as the classifiers compute them, signed by the favourable outcome."""
    import xgboost as xgb

    rng = np.random.default_rng(8)
    x = rng.normal(size=(1200, 4)).astype(np.float32)
    treated = rng.random(1200) < 0.5
    effect = np.where(x[:, 1] > 0, -1.2, 0.0) * treated
    y = (rng.random(1200) < 1 / (1 + np.exp(-(x[:, 0] + effect)))).astype(int)
    t = xgb.XGBClassifier(n_estimators=30, max_depth=3).fit(x[treated], y[treated])
    c = xgb.XGBClassifier(n_estimators=30, max_depth=3).fit(x[~treated], y[~treated])
    test = x[:64]
    p_t, p_c = t.predict_proba(test)[:, 1], c.predict_proba(test)[:, 1]
    folder = export_uplift(t, c, os.path.join(WORK, "uplift"), favourable_outcome=0)
    register("py_uplift", folder)
    res = infer("py_uplift", ("features", test, "FP32"))
    close(res.as_numpy("p_treated"), p_t, 1e-6)
    close(res.as_numpy("p_control"), p_c, 1e-6)
    close(res.as_numpy("uplift"), p_c - p_t, 1e-6)
    try:
        export_uplift(t, xgb.XGBRegressor(n_estimators=2).fit(x, y), os.path.join(WORK, "bad_uplift"))
    except ValueError as e:
        assert "binary:logistic" in str(e), e
    else:
        raise AssertionError("a regressor was exported as an uplift arm")


def _series(n, seed, start="2026-01-01"):
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(n)
    weekly = np.array([0.8, 0.9, 1.0, 1.0, 1.1, 1.4, 1.3])
    y = (80 + 0.2 * t) * weekly[t % 7] + rng.normal(0, 3, n)
    return pd.Series(y, index=pd.date_range(start, periods=n, freq="D"))


def _fit(y, seasonal="add", damped=True):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    return ETSModel(y, error="add", trend="add", damped_trend=damped, seasonal=seasonal,
                    seasonal_periods=7, initialization_method="estimated").fit(disp=False, maxiter=2000)


def test_ets_single_series():
    y = _series(120, 1)
    fit = _fit(y)
    register("py_ets", export_ets(fit, os.path.join(WORK, "ets"), horizon=14))
    res = infer("py_ets", ("history", np.asarray([y.values]), "FP64"))
    frame = fit.get_prediction(start=len(y), end=len(y) + 13).summary_frame(alpha=0.2)
    close(res.as_numpy("mean")[0], frame["mean"], 1e-6)
    q = res.as_numpy("quantiles")[0]
    close(q[:, 0], frame["pi_lower"], 1e-6)
    close(q[:, 2], frame["pi_upper"], 1e-6)
    # Multiplicative seasonality: the seasonal order is found the same way (means only;
    # its quantiles are simulated on both sides).
    mul = _fit(y, seasonal="mul", damped=False)
    register("py_ets_mul", export_ets(mul, os.path.join(WORK, "ets_mul"), horizon=14))
    res = infer("py_ets_mul", ("history", np.asarray([y.values]), "FP64"))
    close(res.as_numpy("mean")[0], mul.forecast(14), 1e-6)


def test_ets_bundle_states_after_the_last_day():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    keys = [("SKU1", "berlin"), ("SKU2", "berlin"), ("SKU1", "paris")]
    full = {k: _series(150, 10 + i) for i, k in enumerate(keys)}
    train = {k: s[:120] for k, s in full.items()}
    fits = {k: _fit(s) for k, s in train.items()}
    register("py_ets_bundle", export_ets_bundle(fits, os.path.join(WORK, "ets_bundle"), horizon=14))

    def forecast(key, days):
        y = full[key][:days]
        return infer("py_ets_bundle",
                     ("sku_id", np.array([key[0].encode()], dtype=np.object_), "BYTES"),
                     ("location_id", np.array([key[1].encode()], dtype=np.object_), "BYTES"),
                     ("history", np.asarray([y.values]), "FP64"),
                     ("last_date", np.array([y.index[-1].date().isoformat().encode()], dtype=np.object_),
                      "BYTES"))

    for key in keys:
        # From the end of training: statsmodels' own forecast.
        res = forecast(key, 120)
        frame = fits[key].get_prediction(start=120, end=133).summary_frame(alpha=0.2)
        close(res.as_numpy("mean")[0], np.clip(frame["mean"], 0, None), 1e-6)
        # 30 days later: the server filters only the new days, as statsmodels smoothing the
        # longer series with the fitted parameters does.
        res = forecast(key, 150)
        model = ETSModel(full[key], error="add", trend="add", damped_trend=True, seasonal="add",
                         seasonal_periods=7, initialization_method="estimated")
        smoothed = model.smooth(fits[key].params)
        frame = smoothed.get_prediction(start=150, end=163).summary_frame(alpha=0.2)
        close(res.as_numpy("mean")[0], np.clip(frame["mean"], 0, None), 1e-6)
        close(res.as_numpy("quantiles")[0, :, 2], np.clip(frame["pi_upper"], 0, None), 1e-6)


def test_mlp_sequential_and_custom():
    import torch
    from torch import nn

    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(), nn.LayerNorm(16),
                        nn.Dropout(0.1), nn.Linear(16, 3), nn.Softmax(dim=-1)).eval()
    register("py_mlp", export_mlp(net, os.path.join(WORK, "mlp")))
    x = torch.randn(40, 6)
    with torch.no_grad():
        want = net(x).numpy()
    close(infer("py_mlp", ("input", x.numpy(), "FP32")).as_numpy("output"), want, 1e-5)

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.out = nn.Linear(5, 8), nn.Linear(8, 2)

        def forward(self, x):
            return torch.sigmoid(self.out(torch.tanh(self.fc1(x))))

    custom = Custom().eval()
    folder = export_mlp(custom, os.path.join(WORK, "mlp2"), layers=[custom.fc1, "tanh", custom.out, "sigmoid"],
                        input_name="x", output_name="y")
    register("py_mlp2", folder)
    x = torch.randn(20, 5)
    with torch.no_grad():
        want = custom(x).numpy()
    close(infer("py_mlp2", ("x", x.numpy(), "FP32")).as_numpy("y"), want, 1e-5)


def test_text_pipeline():
    import torch
    from torch import nn

    spec = {"buckets": 512, "word_ngrams": 2, "char_ngrams": [3], "max_ids": 64, "max_chars": 200}
    labels = ["greeting", "order_status", "talk_to_human"]
    torch.manual_seed(4)
    net = nn.Sequential(nn.EmbeddingBag(spec["buckets"] + 1, 8, mode="mean", padding_idx=0),
                        nn.Linear(8, 3), nn.Softmax(dim=-1)).eval()
    folder = export_text(net, os.path.join(WORK, "text"), labels=labels, text=spec,
                         actions={"order_status": "show_tracking"}, handoff_threshold=0.0)
    register("py_text", folder)
    texts = ["Where is my order #123?", "Hallo, grüß dich 👋", "I want a human!"]
    for text in texts:
        ids = pipeline.ids(text, spec) or [0]
        with torch.no_grad():
            want = net(torch.tensor([ids]))[0].numpy()
        got = client.classify(text, model="py_text")
        by_label = {i.intent: i.probability for i in got.intents}
        close([by_label[lbl] for lbl in labels], want, 1e-5)
        assert got.model_version == "1", got


def test_client_calls_the_demo():
    scores = client.score(["C100042", "nobody"])
    assert [s.customer_id for s in scores] == ["C100042", "nobody"], scores
    assert scores[0].scored and 0.0 <= scores[0].probability <= 1.0, scores[0]
    assert scores[0].risk_band in ("low", "medium", "high"), scores[0]
    assert not scores[1].scored and scores[1].probability is None, scores[1]
    assert scores[0].reasons == [] and scores[0].action is None, scores[0]
    why = client.score(["C100345"], top_reasons=3)[0]
    assert (why.action, why.rule) == ("apology_voucher", "late_deliveries"), why
    assert len(why.reasons) == 3 and why.reasons[0].source == "PRESENT", why
    sizes = [abs(r.contribution) for r in why.reasons]
    assert sizes == sorted(sizes, reverse=True), why
    assert any(r.feature == "customer_churn:late_deliveries_90d" and r.raises_risk
               for r in why.reasons[:2]), why
    forecast = client.forecast(("SKU000", "berlin"), 7)
    assert len(forecast.points) == 7 and forecast.quantiles == [0.1, 0.5, 0.9], forecast
    assert all(p.quantiles[0] <= p.quantiles[1] <= p.quantiles[2] for p in forecast.points), forecast
    inline = client.forecast({"sku_id": "SKU000", "location_id": "berlin"}, 3, model="demand_ets",
                             history=[10.0] * 60, last_date=forecast.history_last_date)
    assert len(inline.points) == 3, inline
    order = client.recommend(("SKU000", "berlin"), lead_time_days=5, review_period_days=7,
                             service_level=0.95, on_hand=40, on_order=[(60, "2026-11-03")],
                             pack_size=12, model="demand_ets")
    assert order.outcome == "ORDER" and order.order_quantity % 12 == 0, order
    assert order.inventory_position == 100 and order.protection_days == 12, order
    assert order.stockout_probability <= 0.05 and order.order_value is None, order
    try:
        client.recommend(("SKU000", "berlin"), lead_time_days=5, service_level=1.5)
    except mercator.MercatorError as e:
        assert e.code.name == "INVALID_ARGUMENT" and "cycle_service_level" in e.message, e
    else:
        raise AssertionError("a service level of 1.5 was taken")
    intent = client.classify("my coupon code is not working")
    assert intent.intents[0].intent == "discount_code" and intent.action, intent
    # A pushed row is what the next score reads.
    now = dt.datetime.now(dt.timezone.utc)
    pushed = client.features.push("customer_churn", [{
        "entity_key": "C999999", "event_time": now,
        "values": {"days_since_last_order": 200.0, "orders_90d": 0.0, "return_rate": 0.9}}])
    assert pushed.written == 1, pushed
    fresh = client.score(["C999999"])[0]
    assert fresh.scored and fresh.probability > 0.5, fresh
    try:
        client.score([""])
    except mercator.MercatorError as e:
        assert e.code.name == "INVALID_ARGUMENT", e
    else:
        raise AssertionError("an empty id was scored")


def test_outcomes_and_quality():
    forecast = client.forecast(("SKU003", "lyon"), 3)
    actual = [round(p.mean * 1.2) for p in forecast.points]
    import pandas as pd
    frame = pd.DataFrame({"entity": ["SKU003|lyon"] * 3,
                          "time": pd.to_datetime([p.date for p in forecast.points], utc=True),
                          "value": actual})
    assert client.push_outcomes("demand", frame) == 3
    try:
        client.push_outcomes("demand", [("SKU003|lyon", dt.datetime(2026, 11, 1), 1.0)])
    except mercator.MercatorError as e:
        assert e.code.name == "INVALID_ARGUMENT" and "outcomes[0].time" in e.message, e
    else:
        raise AssertionError("a naive datetime was taken")
    means = np.array([p.mean for p in forecast.points])
    want = np.abs(np.array(actual) - means).sum() / np.abs(actual).sum()
    # The log flushes every few seconds; the other forecasts of this run are pending.
    for _ in range(100):
        versions = client.quality("demand")
        judged = [v for v in versions if v.judged >= 3]
        if judged:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"never judged: {versions}")
    assert abs(judged[0].metrics["wape"] - want) < 1e-9, (judged[0].metrics, want)


def test_registry_from_python():
    """Register, list, promote and roll back from a notebook, as the CLI does."""
    import xgboost as xgb

    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    folders = []
    for rounds in (5, 20):
        booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=y), num_boost_round=rounds)
        folders.append((booster, export_xgboost(booster, os.path.join(WORK, f"reg{rounds}"))))
    reg = client.registry
    first = reg.register("py_reg", folders[0][1], alias="champion", description="five rounds",
                         tags={"team": "retention"}, metrics={"auc": 0.9})
    assert (first.model, first.version, first.status) == ("py_reg", 1, "READY"), first
    assert first.aliases == ["champion"] and first.tags == {"team": "retention"}, first
    assert "mercator.json" in first.files and first.manifest["kind"] == "xgboost", first
    second = reg.register("py_reg", folders[1][1])
    assert second.version == 2 and second.aliases == [], second
    summary = {m.name: m for m in reg.list_models()}["py_reg"]
    assert summary.latest_version == 2 and summary.aliases == {"champion": 1}, summary
    assert [v.version for v in reg.versions("py_reg")] == [1, 2]
    moved = reg.promote("py_reg", 2, reason="more rounds")
    assert (moved.alias, moved.from_version, moved.to_version) == ("champion", 1, 2), moved
    want = folders[1][0].predict(xgb.DMatrix(x[:8]))
    for _ in range(300):  # the server picks the move up (and loads the model at first)
        try:
            res = infer("py_reg", ("features", x[:8], "FP32"))
        except InferenceServerException:
            time.sleep(0.1)
            continue
        if np.allclose(res.as_numpy("probability"), want, atol=1e-6):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the promoted version was never served")
    back = reg.rollback("py_reg")
    assert (back.from_version, back.to_version) == (2, 1), back
    assert reg.get_version("py_reg").version == 1
    try:
        reg.get_version("py_nope")
    except mercator.NotFound as e:
        assert isinstance(e, LookupError) and e.code.name == "NOT_FOUND" and "py_nope" in e.message, e
    else:
        raise AssertionError("an unknown model was found")
    try:
        reg.register("py_reg", WORK)  # no manifest at the top
    except mercator.InvalidArgument as e:
        assert "mercator.json" in e.message, e
    else:
        raise AssertionError("a folder without a manifest was registered")


TYPED_VIEW = """
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "py_typed"
entity = "customer"
ttl = "30d"
fields = [
  { name = "visits", type = "int64" },
  { name = "member", type = "bool" },
  { name = "score", type = "float32" },
]
"""


def test_push_errors_and_training_sets():
    """Pushes typed as defined, errors that name the field, and a training set that keeps
    the entity dataframe's columns (labels) and the features' types."""
    import pandas as pd

    toml = os.path.join(WORK, "typed.toml")
    with open(toml, "w") as f:
        f.write(TYPED_VIEW)
    out = subprocess.run([MERCATOR, "features", "--server", URL, "apply", "--merge", toml],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    feats = mercator.Client(ADDR).features  # a fresh client reads the new view
    # The README's push: no event_time, the time of the call.
    pushed = feats.push("py_typed", [{"entity_key": "P1", "values": {"visits": 3, "member": True, "score": 0.5}},
                                     {"entity_key": "P2", "values": {"visits": 7, "member": False}}])
    assert pushed.written == 2, pushed
    try:
        feats.push("py_typed", [{"entity_key": "P3", "values": {"visits": "many"}}])
    except mercator.InvalidArgument as e:
        assert isinstance(e, ValueError) and "rows[0].values[visits]" in e.message, e
    else:
        raise AssertionError("a string was pushed as int64")
    try:
        feats.push("py_typed", [{"entity_key": "P3", "values": {"nope": 1}}])
    except mercator.InvalidArgument as e:
        assert "nope" in e.message, e
    else:
        raise AssertionError("an unknown field was pushed")

    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1)
    entities = pd.DataFrame({
        "event_timestamp": [later, later, later, pd.Timestamp("2020-01-01", tz="UTC")],
        "customer_id": ["P1", "P2", "P9", "P1"],
        "label": np.array([1, 0, 1, 0], dtype="int64"),
        "vip": [True, False, False, True],
    })
    features = ["py_typed:visits", "py_typed:member", "py_typed:score"]
    train = feats.get_historical_features(entities, features)
    assert list(train.columns) == ["event_timestamp", "customer_id", "label", "vip", "py_typed__visits",
                                   "py_typed__member", "py_typed__score"], train.columns
    assert str(train["label"].dtype) == "int64" and str(train["vip"].dtype) == "bool", train.dtypes
    assert str(train["py_typed__visits"].dtype) == "Int64", train.dtypes
    assert str(train["py_typed__member"].dtype) == "boolean", train.dtypes
    assert str(train["py_typed__score"].dtype) == "float32", train.dtypes
    assert train["py_typed__visits"].tolist()[:2] == [3, 7], train
    assert train["py_typed__visits"].isna().tolist() == [False, False, True, True], train
    assert train["py_typed__member"].tolist()[:2] == [True, False], train
    assert train["py_typed__score"].isna().tolist() == [False, True, True, True], train

    # The same entity rows through the CLI's training set (the join held to pandas'
    # merge_asof by the server's tests): the same values.
    path = os.path.join(WORK, "entities.parquet")
    entities.to_parquet(path)
    cli_out = os.path.join(WORK, "train.parquet")
    out = subprocess.run([MERCATOR, "features", "--server", URL, "history", "--features", ",".join(features),
                          "--entities", path, "--output", cli_out], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    cli = pd.read_parquet(cli_out)
    assert list(cli.columns) == list(train.columns), cli.columns
    for name in features:
        column = name.replace(":", "__")
        assert cli[column].isna().tolist() == train[column].isna().tolist(), (cli[column], train[column])
        assert cli[column].dropna().tolist() == train[column].dropna().tolist(), (cli[column], train[column])
    try:
        feats.get_historical_features(entities.drop(columns=["customer_id"]), features)
    except mercator.InvalidArgument as e:
        assert "customer_id" in e.message, e
    else:
        raise AssertionError("entity rows without their key were joined")


def test_export_hints_at_the_extra():
    import sys as _sys

    saved = {k: _sys.modules.get(k) for k in ("safetensors", "safetensors.torch")}
    _sys.modules["safetensors"] = None
    _sys.modules.pop("safetensors.torch", None)
    try:
        import torch

        export_mlp(torch.nn.Sequential(torch.nn.Linear(2, 1)), os.path.join(WORK, "nomodule"))
    except ModuleNotFoundError as e:
        assert "mercator-serving[torch]" in str(e), e
    else:
        raise AssertionError("exported without safetensors")
    finally:
        for k, v in saved.items():
            if v is None:
                _sys.modules.pop(k, None)
            else:
                _sys.modules[k] = v


for test in (test_xgboost_binary_with_feature_names, test_xgboost_sklearn_multiclass, test_ets_single_series,
             test_ets_bundle_states_after_the_last_day, test_mlp_sequential_and_custom, test_text_pipeline,
             test_client_calls_the_demo, test_registry_from_python, test_push_errors_and_training_sets,
             test_export_hints_at_the_extra, test_uplift_pair_of_classifiers):
    check(test)
failed = sum(1 for _, err in results if err)
print(f"python package: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
