"""Drives a running Mercator server with KServe's own Python clients: InferenceRESTClient
(V2 over HTTP, JSON and binary tensors) and InferenceGRPCClient.

    python kserve_test.py HTTP_HOST:PORT GRPC_HOST:PORT churn_expected.json

Expects the demo churn model as `churn`, with the demo customers' features loaded.
"""

import asyncio
import json
import sys
import traceback

import httpx
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

HTTP_ADDR, GRPC_ADDR, CHURN_EXPECTED = sys.argv[1:4]
BASE = f"http://{HTTP_ADDR}"
with open(CHURN_EXPECTED) as f:
    EXP = json.load(f)
X = np.array([[np.nan if v is None else v for v in r] for r in EXP["inputs"]], dtype=np.float32)
results = []


def close(got, want, tol=1e-6):
    got, want = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, dtype=np.float64).ravel()
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.abs(got - want).max()
    assert diff <= tol, f"max abs diff {diff}"


def output(response, name):
    return next(o for o in response.outputs if o.name == name).as_numpy()


async def test_rest_health_and_binary_infer():
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        assert await client.is_server_live(BASE)
        assert await client.is_server_ready(BASE)
        assert await client.is_model_ready(BASE, "churn")
        assert not await client.is_model_ready(BASE, "no-such-model")
        inp = InferInput("features", list(X.shape), "FP32")
        inp.set_data_from_numpy(X, binary_data=True)
        res = await client.infer(BASE, InferRequest("churn", [inp], request_id="ks-1"), model_name="churn")
        # (KServe's REST client does not read model_version back from a response.)
        assert res.id == "ks-1", res.id
        close(output(res, "churn_probability"), EXP["churn_probability"])
    finally:
        await client.close()


async def test_rest_json_infer_and_errors():
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        keep = ~np.isnan(X).any(axis=1)
        inp = InferInput("features", list(X[keep].shape), "FP32")
        inp.set_data_from_numpy(X[keep], binary_data=False)
        res = await client.infer(BASE, InferRequest("churn", [inp]), model_name="churn")
        close(output(res, "churn_probability"), np.asarray(EXP["churn_probability"])[keep])
        wrong = InferInput("features", [1, 11], "FP32")
        wrong.set_data_from_numpy(np.zeros((1, 11), dtype=np.float32), binary_data=False)
        try:
            await client.infer(BASE, InferRequest("churn", [wrong]), model_name="churn")
        except httpx.HTTPStatusError as e:
            assert e.response.status_code == 400, e.response.status_code
            assert "[-1, 12]" in str(e), str(e)
        else:
            raise AssertionError("a wrong shape was accepted")
    finally:
        await client.close()


async def test_grpc_client():
    client = InferenceGRPCClient(GRPC_ADDR)
    try:
        assert await client.is_server_ready()
        inp = InferInput("features", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        res = await client.infer(InferRequest("churn", [inp]))
        close(output(res, "churn_probability"), EXP["churn_probability"])
    finally:
        await client.close()


async def main():
    for test in (test_rest_health_and_binary_infer, test_rest_json_infer_and_errors, test_grpc_client):
        try:
            await test()
            results.append((test.__name__, None))
            print("ok  ", test.__name__)
        except Exception:  # noqa: BLE001 - report every failure, keep going
            results.append((test.__name__, traceback.format_exc()))
            print("FAIL", test.__name__)
            print(traceback.format_exc())


asyncio.run(main())
failed = sum(1 for _, err in results if err)
print(f"kserve: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
