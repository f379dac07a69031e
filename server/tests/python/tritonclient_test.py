"""Drives a running Mercator server with tritonclient[grpc], as a V2 client would.

    python tritonclient_test.py HOST:PORT churn_expected.json regression_expected.json DEMAND_DIR

Expects models `churn` (demo), `reg` (bare XGBoost regression, inferred manifest),
`reg-multi` (the same trees, inputs FP64[4] + INT64[2] + UINT8[1] + FP16[1]), `demand`
and `demand_ets` (the demo forecasters, DEMAND_DIR/net and DEMAND_DIR/ets), and the demo
customers' features loaded into view `customer_churn`.
"""

import json
import sys
import traceback

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

ADDR, CHURN_EXPECTED, REG_EXPECTED, DEMAND_DIR = sys.argv[1:5]
client = grpcclient.InferenceServerClient(ADDR)
results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print("ok  ", fn.__name__)
    except Exception:  # noqa: BLE001 - report every failure, keep going
        results.append((fn.__name__, traceback.format_exc()))
        print("FAIL", fn.__name__)
        print(traceback.format_exc())


def load(path):
    with open(path) as f:
        return json.load(f)


def rows(expected):
    return np.array([[np.nan if v is None else v for v in r] for r in expected["inputs"]], dtype=np.float32)


def close(got, want, tol=1e-6):
    got, want = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, dtype=np.float64).ravel()
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.abs(got - want).max()
    assert diff <= tol, f"max abs diff {diff}"


def test_live_ready_metadata_config():
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    assert client.is_model_ready("churn", "1")
    assert not client.is_model_ready("churn", "7")
    assert client.get_server_metadata().name == "mercator"
    meta = client.get_model_metadata("churn")
    assert meta.versions == ["1"], meta.versions
    assert meta.inputs[0].name == "features" and meta.inputs[0].datatype == "FP32"
    assert list(meta.inputs[0].shape) == [-1, 12]
    assert [o.name for o in meta.outputs] == ["churn_probability", "churn_margin"]
    config = client.get_model_config("churn").config
    assert config.name == "churn" and config.max_batch_size == 4096
    assert list(config.input[0].dims) == [12]
    as_json = client.get_model_config("churn", as_json=True)
    assert as_json["config"]["input"][0]["data_type"] == "TYPE_FP32"


def test_infer_raw_matches_xgboost():
    exp = load(CHURN_EXPECTED)
    x = rows(exp)
    inp = grpcclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    outs = [grpcclient.InferRequestedOutput("churn_probability"), grpcclient.InferRequestedOutput("churn_margin")]
    res = client.infer("churn", [inp], outputs=outs, request_id="tc-1")
    assert res.get_response().model_version == "1"
    assert res.get_response().id == "tc-1"
    close(res.as_numpy("churn_probability"), exp["churn_probability"])
    close(res.as_numpy("churn_margin"), exp["churn_margin"])
    res = client.infer("churn", [inp], model_version="1")
    close(res.as_numpy("churn_probability"), exp["churn_probability"])


def test_infer_typed_contents():
    exp = load(CHURN_EXPECTED)
    x = rows(exp)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(ADDR))
    req = service_pb2.ModelInferRequest(model_name="churn")
    t = req.inputs.add(name="features", datatype="FP32", shape=list(x.shape))
    t.contents.fp32_contents.extend(x.ravel().tolist())
    resp = stub.ModelInfer(req)
    got = np.frombuffer(resp.raw_output_contents[0], dtype="<f4")
    close(got, exp["churn_probability"])


def test_bare_xgboost_model_and_several_datatypes():
    exp = load(REG_EXPECTED)
    x = rows(exp)
    inp = grpcclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer("reg", [inp])
    close(res.as_numpy("prediction"), exp["predictions"], tol=1e-4)  # regression values near 100
    # f32 prediction equality to xgboost is proven at 1e-6 by the Rust parity test; here
    # the same trees fed through four datatypes must give exactly the FP32 path's numbers.
    rng = np.random.default_rng(3)
    n = 50
    dense = rng.normal(size=(n, 4))
    counts = rng.integers(-3, 5, size=(n, 2)).astype(np.int64)
    flag = rng.integers(0, 2, size=(n, 1)).astype(np.uint8)
    half = rng.normal(size=(n, 1)).astype(np.float16)
    as_f32 = np.hstack([dense.astype(np.float32), counts.astype(np.float32), flag.astype(np.float32), half.astype(np.float32)])
    single = grpcclient.InferInput("features", [n, 8], "FP32")
    single.set_data_from_numpy(as_f32)
    want = client.infer("reg", [single]).as_numpy("prediction")
    inputs = []
    for name, arr, dt in (("dense", dense, "FP64"), ("counts", counts, "INT64"), ("flag", flag, "UINT8"), ("half", half, "FP16")):
        i = grpcclient.InferInput(name, list(arr.shape), dt)
        i.set_data_from_numpy(arr)
        inputs.append(i)
    got = client.infer("reg-multi", inputs).as_numpy("y")
    assert got.dtype == np.float64, got.dtype
    assert np.array_equal(got, want.astype(np.float64)), (got[:3], want[:3])


def test_bad_input_is_invalid_argument():
    x = np.zeros((2, 11), dtype=np.float32)
    inp = grpcclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    try:
        client.infer("churn", [inp])
    except InferenceServerException as e:
        assert "INVALID_ARGUMENT" in str(e.status()), e.status()
        assert "features" in e.message() and "[-1, 12]" in e.message(), e.message()
    else:
        raise AssertionError("a wrong shape was accepted")
    try:
        client.infer("no-such-model", [inp])
    except InferenceServerException as e:
        assert "NOT_FOUND" in str(e.status()), e.status()
    else:
        raise AssertionError("an unknown model was accepted")


def test_infer_by_customer_id():
    # A BYTES input named for the entity key instead of the feature tensor: the server
    # reads each customer's features from its store.
    exp = load(CHURN_EXPECTED)
    ids = np.array([c.encode() for c in exp["customer_ids"]] + [b"nobody"], dtype=np.object_)
    key = grpcclient.InferInput("customer_id", [len(ids)], "BYTES")
    key.set_data_from_numpy(ids)
    res = client.infer("churn", [key])
    p = res.as_numpy("churn_probability")
    close(p[:-1], exp["churn_probability"])
    params = res.get_response().parameters
    assert params["entities_without_features"].string_param == str(len(ids) - 1), params


def test_forecasters_over_v2():
    # The neural forecaster: a batch of histories (one padded with leading NaNs) and the
    # date of each one's last day; PyTorch's numbers come back.
    net = load(f"{DEMAND_DIR}/net/expected.json")["series"][:2]
    width = max(len(c["history"]) for c in net) + 3
    hist = np.full((2, width), np.nan, dtype=np.float32)
    for i, c in enumerate(net):
        hist[i, width - len(c["history"]):] = c["history"]
    h = grpcclient.InferInput("history", list(hist.shape), "FP32")
    h.set_data_from_numpy(hist)
    d = grpcclient.InferInput("last_date", [2], "BYTES")
    d.set_data_from_numpy(np.array([c["last_date"].encode() for c in net], dtype=np.object_))
    res = client.infer("demand", [h, d])
    mean, q = res.as_numpy("mean"), res.as_numpy("quantiles")
    assert mean.shape == (2, 28) and q.shape == (2, 28, 3), (mean.shape, q.shape)
    for i, c in enumerate(net):
        close(mean[i], c["mean"], tol=1e-3)
        close(q[i, :, 0], c["values"][0], tol=1e-3)
    # The ETS bundle: series keys as BYTES, the full history as FP64; statsmodels' numbers.
    case = load(f"{DEMAND_DIR}/ets/expected.json")["series"][0]
    inputs = []
    for name, value in (("sku_id", case["key"][0]), ("location_id", case["key"][1]),
                        ("last_date", case["full_last_date"])):
        i = grpcclient.InferInput(name, [1], "BYTES")
        i.set_data_from_numpy(np.array([value.encode()], dtype=np.object_))
        inputs.append(i)
    y = np.array([case["history"]], dtype=np.float64)
    i = grpcclient.InferInput("history", list(y.shape), "FP64")
    i.set_data_from_numpy(y)
    inputs.append(i)
    res = client.infer("demand_ets", inputs)
    close(res.as_numpy("mean")[0], np.clip(case["from_full"]["mean"], 0, None), tol=1e-6)
    close(res.as_numpy("quantiles")[0, :, 2], np.clip(case["from_full"]["q0.9"], 0, None), tol=1e-6)
    # An unknown series is NOT_FOUND, naming it.
    inputs[0].set_data_from_numpy(np.array([b"SKU999"], dtype=np.object_))
    try:
        client.infer("demand_ets", inputs)
    except InferenceServerException as e:
        assert "NOT_FOUND" in str(e.status()) and "SKU999" in e.message(), (e.status(), e.message())
    else:
        raise AssertionError("an unknown series was forecast")


def test_model_repository():
    # Triton's repository extension, mapped to the registry.
    assert "model_repository" in client.get_server_metadata().extensions
    index = {(m.name, m.version): m.state for m in client.get_model_repository_index().models}
    assert index[("churn", "1")] == "READY", index
    assert index[("reg", "1")] == "READY", index
    client.unload_model("reg")
    assert not client.is_model_ready("reg")
    states = [m for m in client.get_model_repository_index().models if m.name == "reg"]
    assert [(m.state, m.reason) for m in states] == [("UNAVAILABLE", "unloaded")], states
    client.load_model("reg")
    assert client.is_model_ready("reg")
    try:
        client.load_model("no-such-model")
    except InferenceServerException as e:
        assert "NOT_FOUND" in str(e.status()), e.status()
    else:
        raise AssertionError("an unknown model was loaded")


def test_statistics():
    stats = client.get_inference_statistics("churn")
    s = stats.model_stats[0]
    assert s.name == "churn" and s.version == "1"
    assert s.inference_count >= 64, s.inference_count
    assert s.inference_stats.success.count >= 2


for test in (test_live_ready_metadata_config, test_infer_raw_matches_xgboost, test_infer_typed_contents,
             test_bare_xgboost_model_and_several_datatypes, test_bad_input_is_invalid_argument,
             test_infer_by_customer_id, test_forecasters_over_v2, test_model_repository,
             test_statistics):
    check(test)
failed = sum(1 for _, err in results if err)
print(f"tritonclient: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
