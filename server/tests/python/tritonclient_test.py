"""Drives a running Mercator server with tritonclient, over gRPC or HTTP/REST, as a V2
client would.

    python tritonclient_test.py grpc|http HOST:PORT churn_expected.json regression_expected.json DEMAND_DIR

HOST:PORT is the gRPC listener for `grpc`, the HTTP listener for `http`. The same tests
run over both; where the two clients differ (protobuf messages or JSON dicts, gRPC codes
or HTTP statuses) the helpers below read either.

Expects models `churn` (demo), `reg` (bare XGBoost regression, inferred manifest),
`reg-multi` (the same trees, inputs FP64[4] + INT64[2] + UINT8[1] + FP16[1]), `demand`
and `demand_ets` (the demo forecasters, DEMAND_DIR/net and DEMAND_DIR/ets), and the demo
customers' features loaded into view `customer_churn`.
"""

import gzip
import json
import sys
import traceback
import urllib.error
import urllib.request

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

PROTOCOL, ADDR, CHURN_EXPECTED, REG_EXPECTED, DEMAND_DIR = sys.argv[1:6]
HTTP = PROTOCOL == "http"
tc = httpclient if HTTP else grpcclient
client = tc.InferenceServerClient(ADDR)
results = []


def get(obj, key):
    """A field of a gRPC message or of the HTTP client's JSON dict."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def response(res):
    """An inference result's response, as a dict for both protocols."""
    r = res.get_response()
    if isinstance(r, dict):
        return r
    params = {k: v.string_param for k, v in r.parameters.items()}
    return {"model_version": r.model_version, "id": r.id, "parameters": params}


# The error each protocol gives for a gRPC code.
CODES = {"INVALID_ARGUMENT": "400", "NOT_FOUND": "404"}


def expect_error(code, fn, *needles):
    try:
        fn()
    except InferenceServerException as e:
        want = CODES[code] if HTTP else code
        assert want in str(e.status()), (e.status(), e.message())
        for needle in needles:
            assert needle in e.message(), e.message()
    else:
        raise AssertionError(f"expected {code}")


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
    assert get(client.get_server_metadata(), "name") == "mercator"
    meta = client.get_model_metadata("churn")
    assert list(get(meta, "versions")) == ["1"], meta
    first = get(meta, "inputs")[0]
    assert get(first, "name") == "features" and get(first, "datatype") == "FP32"
    assert list(get(first, "shape")) == [-1, 12]
    assert [get(o, "name") for o in get(meta, "outputs")] == ["churn_probability", "churn_margin"]
    if HTTP:
        config = client.get_model_config("churn")
    else:
        config = client.get_model_config("churn", as_json=True)["config"]
    assert config["name"] == "churn" and int(config["max_batch_size"]) == 4096
    assert [int(d) for d in config["input"][0]["dims"]] == [12]
    assert config["input"][0]["data_type"] == "TYPE_FP32"
    expect_error("NOT_FOUND", lambda: client.get_model_metadata("no-such-model"), "no-such-model")


def test_infer_raw_matches_xgboost():
    exp = load(CHURN_EXPECTED)
    x = rows(exp)
    inp = tc.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    outs = [tc.InferRequestedOutput("churn_probability"), tc.InferRequestedOutput("churn_margin")]
    res = client.infer("churn", [inp], outputs=outs, request_id="tc-1")
    assert response(res)["model_version"] == "1"
    assert response(res)["id"] == "tc-1"
    close(res.as_numpy("churn_probability"), exp["churn_probability"])
    close(res.as_numpy("churn_margin"), exp["churn_margin"])
    res = client.infer("churn", [inp], model_version="1")
    close(res.as_numpy("churn_probability"), exp["churn_probability"])


def test_infer_typed_contents():
    exp = load(CHURN_EXPECTED)
    x = rows(exp)
    if HTTP:
        # JSON tensors both ways, every row: a missing feature is NaN, which Python's json
        # (so tritonclient.http) writes as a bare NaN token.
        assert np.isnan(x).any(), "the expected rows include missing features"
        inp = tc.InferInput("features", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        out = tc.InferRequestedOutput("churn_probability", binary_data=False)
        res = client.infer("churn", [inp], outputs=[out])
        assert "data" in res.get_response()["outputs"][0], res.get_response()
        close(res.as_numpy("churn_probability"), exp["churn_probability"])
        # And as plain JSON written by Python's json module, NaN and Infinity bare.
        body = json.dumps({"inputs": [{"name": "features", "shape": list(x.shape),
                                       "datatype": "FP32", "data": x.tolist()}]})
        assert "NaN" in body
        status, answer = post("/v2/models/churn/infer", body.encode())
        assert status == 200, answer
        prob = next(o for o in answer["outputs"] if o["name"] == "churn_probability")
        close(prob["data"], exp["churn_probability"])
        return
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
    inp = tc.InferInput("features", list(x.shape), "FP32")
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
    single = tc.InferInput("features", [n, 8], "FP32")
    single.set_data_from_numpy(as_f32)
    want = client.infer("reg", [single]).as_numpy("prediction")
    inputs = []
    for name, arr, dt in (("dense", dense, "FP64"), ("counts", counts, "INT64"), ("flag", flag, "UINT8"), ("half", half, "FP16")):
        i = tc.InferInput(name, list(arr.shape), dt)
        i.set_data_from_numpy(arr)
        inputs.append(i)
    got = client.infer("reg-multi", inputs).as_numpy("y")
    assert got.dtype == np.float64, got.dtype
    assert np.array_equal(got, want.astype(np.float64)), (got[:3], want[:3])


def test_bad_input_is_invalid_argument():
    x = np.zeros((2, 11), dtype=np.float32)
    inp = tc.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    expect_error("INVALID_ARGUMENT", lambda: client.infer("churn", [inp]), "features", "[-1, 12]")
    expect_error("NOT_FOUND", lambda: client.infer("no-such-model", [inp]))


def test_infer_by_customer_id():
    # A BYTES input named for the entity key instead of the feature tensor: the server
    # reads each customer's features from its store.
    exp = load(CHURN_EXPECTED)
    ids = np.array([c.encode() for c in exp["customer_ids"]] + [b"nobody"], dtype=np.object_)
    key = tc.InferInput("customer_id", [len(ids)], "BYTES")
    key.set_data_from_numpy(ids)
    res = client.infer("churn", [key])
    p = res.as_numpy("churn_probability")
    close(p[:-1], exp["churn_probability"])
    params = response(res)["parameters"]
    assert params["entities_without_features"] == str(len(ids) - 1), params


def test_forecasters_over_v2():
    # The neural forecaster: a batch of histories (one padded with leading NaNs) and the
    # date of each one's last day; PyTorch's numbers come back.
    net = load(f"{DEMAND_DIR}/net/expected.json")["series"][:2]
    width = max(len(c["history"]) for c in net) + 3
    hist = np.full((2, width), np.nan, dtype=np.float32)
    for i, c in enumerate(net):
        hist[i, width - len(c["history"]):] = c["history"]
    h = tc.InferInput("history", list(hist.shape), "FP32")
    h.set_data_from_numpy(hist)
    d = tc.InferInput("last_date", [2], "BYTES")
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
        i = tc.InferInput(name, [1], "BYTES")
        i.set_data_from_numpy(np.array([value.encode()], dtype=np.object_))
        inputs.append(i)
    y = np.array([case["history"]], dtype=np.float64)
    i = tc.InferInput("history", list(y.shape), "FP64")
    i.set_data_from_numpy(y)
    inputs.append(i)
    res = client.infer("demand_ets", inputs)
    close(res.as_numpy("mean")[0], np.clip(case["from_full"]["mean"], 0, None), tol=1e-6)
    close(res.as_numpy("quantiles")[0, :, 2], np.clip(case["from_full"]["q0.9"], 0, None), tol=1e-6)
    # An unknown series is NOT_FOUND, naming it.
    inputs[0].set_data_from_numpy(np.array([b"SKU999"], dtype=np.object_))
    expect_error("NOT_FOUND", lambda: client.infer("demand_ets", inputs), "SKU999")


def test_model_repository():
    # Triton's repository extension, mapped to the registry.
    assert "model_repository" in get(client.get_server_metadata(), "extensions")

    def index():
        i = client.get_model_repository_index()
        return i if HTTP else i.models

    states = {(get(m, "name"), get(m, "version")): get(m, "state") for m in index()}
    assert states[("churn", "1")] == "READY", states
    assert states[("reg", "1")] == "READY", states
    client.unload_model("reg")
    assert not client.is_model_ready("reg")
    reg = [(get(m, "state"), get(m, "reason")) for m in index() if get(m, "name") == "reg"]
    assert reg == [("UNAVAILABLE", "unloaded")], reg
    client.load_model("reg")
    assert client.is_model_ready("reg")
    expect_error("NOT_FOUND", lambda: client.load_model("no-such-model"))


def test_statistics():
    s = get(client.get_inference_statistics("churn"), "model_stats")[0]
    assert get(s, "name") == "churn" and get(s, "version") == "1"
    assert int(get(s, "inference_count")) >= 64, s
    assert int(get(get(get(s, "inference_stats"), "success"), "count")) >= 2, s


def test_stream_infer():
    # ModelStreamInfer: answers in request order, a bad request's error in its own answer
    # while the stream goes on.
    import queue
    exp = load(CHURN_EXPECTED)
    x = rows(exp)
    answers = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        good = tc.InferInput("features", list(x.shape), "FP32")
        good.set_data_from_numpy(x)
        bad = tc.InferInput("features", [1, 11], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 11), dtype=np.float32))
        for i in range(20):
            client.async_stream_infer("churn", [bad if i == 7 else good], request_id=f"s-{i}")
        got = [answers.get(timeout=30) for _ in range(20)]
    finally:
        client.stop_stream()
    for i, (result, error) in enumerate(got):
        if i == 7:
            assert result is None and error is not None, (result, error)
            assert "[-1, 12]" in error.message(), error.message()
            continue
        assert error is None, (i, error)
        assert result.get_response().id == f"s-{i}", (i, result.get_response().id)
        close(result.as_numpy("churn_probability"), exp["churn_probability"])


def post(path, body, headers=None):
    """A plain HTTP POST, as curl sends it: the status and the parsed JSON answer."""
    req = urllib.request.Request(f"http://{ADDR}{path}", data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_plain_http_json():
    exp = load(CHURN_EXPECTED)
    x = rows(exp)
    keep = ~np.isnan(x).any(axis=1)
    body = {"id": "curl-1", "inputs": [{"name": "features", "shape": list(x[keep].shape),
                                         "datatype": "FP32", "data": x[keep].tolist()}]}
    status, answer = post("/v2/models/churn/infer", json.dumps(body).encode())
    assert status == 200, answer
    assert answer["id"] == "curl-1" and answer["model_version"] == "1", answer
    out = {o["name"]: o for o in answer["outputs"]}
    close(out["churn_probability"]["data"], np.asarray(exp["churn_probability"])[keep])
    # The same body gzipped, as tritonclient sends with request_compression_algorithm.
    status, again = post("/v2/models/churn/versions/1/infer", gzip.compress(json.dumps(body).encode()),
                         {"Content-Encoding": "gzip"})
    assert status == 200 and again["outputs"] == answer["outputs"], again
    inp = httpclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer("churn", [inp], request_compression_algorithm="deflate")
    close(res.as_numpy("churn_probability"), exp["churn_probability"])
    # Bad bodies: each a 400 whose error names what is wrong.
    bad = [
        (b'{"inputs": [', "request body"),
        (b'{"inputs": [{"name": "features", "datatype": "FP32", "data": [1]}]}', "shape"),
        (json.dumps({"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32",
                                 "data": [1, 2, 3]}]}).encode(), "the shape gives 12"),
        (json.dumps({"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32",
                                 "data": ["a"] * 12}]}).encode(), "is not a FP32 value"),
        (json.dumps({"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FLOAT",
                                 "data": [1] * 12}]}).encode(), "unknown datatype"),
        (json.dumps({"inputs": [{"name": "features", "shape": [2, 12], "datatype": "FP32",
                                 "data": [1] * 24}]}).encode()[:-1], "request body"),
        (json.dumps({"inputs": [{"name": "features", "shape": [1, 11], "datatype": "FP32",
                                 "data": [1] * 11}]}).encode(), "[-1, 12]"),
        (json.dumps({"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 48}}]}).encode(), "binary_data_size"),
    ]
    for body, needle in bad:
        status, answer = post("/v2/models/churn/infer", body)
        assert status == 400, (status, answer, body[:80])
        assert needle in answer["error"], (needle, answer)
    header = json.dumps({"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 48}}]}).encode()
    status, answer = post("/v2/models/churn/infer", header + b"\0" * 50,
                          {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and "2 bytes of binary data" in answer["error"], answer
    status, answer = post("/v2/models/no-such-model/infer", b'{"inputs": []}')
    assert status == 404 and "no-such-model" in answer["error"], answer


tests = [test_live_ready_metadata_config, test_infer_raw_matches_xgboost, test_infer_typed_contents,
         test_bare_xgboost_model_and_several_datatypes, test_bad_input_is_invalid_argument,
         test_infer_by_customer_id, test_forecasters_over_v2, test_model_repository,
         test_statistics]
if HTTP:
    tests.append(test_plain_http_json)
else:
    tests.append(test_stream_infer)
for test in tests:
    check(test)
failed = sum(1 for _, err in results if err)
print(f"tritonclient {PROTOCOL}: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
