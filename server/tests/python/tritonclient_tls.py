"""tritonclient[grpc] over mutual TLS with a bearer token, as a production caller would.

    MERCATOR_TOKEN=mk_... python tritonclient_tls.py HOST:PORT CA CLIENT_CERT CLIENT_KEY CHURN_DIR

The token is read from the environment and never printed.
"""

import json
import os
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

ADDR, CA, CERT, KEY, CHURN_DIR = sys.argv[1:6]
TOKEN = os.environ["MERCATOR_TOKEN"]
HEADERS = {"authorization": f"Bearer {TOKEN}"}


def client(with_certificate=True):
    kwargs = {"ssl": True, "root_certificates": CA}
    if with_certificate:
        kwargs.update(private_key=KEY, certificate_chain=CERT)
    return grpcclient.InferenceServerClient(ADDR, **kwargs)


c = client()
assert c.is_server_live(), "live"
assert c.is_server_ready(), "ready (health needs no token)"
assert c.is_model_ready("churn", headers=HEADERS)
meta = c.get_model_metadata("churn", headers=HEADERS)
assert meta.inputs[0].name == "features", meta

with open(os.path.join(CHURN_DIR, "expected.json")) as f:
    expected = json.load(f)
x = np.array([[np.nan if v is None else v for v in r] for r in expected["inputs"]], dtype=np.float32)
inp = grpcclient.InferInput("features", list(x.shape), "FP32")
inp.set_data_from_numpy(x)
res = c.infer("churn", [inp], headers=HEADERS)
got = res.as_numpy("churn_probability").astype(np.float64).ravel()
want = np.asarray(expected["churn_probability"], dtype=np.float64).ravel()
assert got.shape == want.shape and np.abs(got - want).max() <= 1e-6, (got, want)

# Over TLS but without the token: refused as unauthenticated.
try:
    c.get_model_metadata("churn")
    raise AssertionError("metadata without a token was answered")
except InferenceServerException as e:
    assert "UNAUTHENTICATED" in str(e.status()), e

# mTLS is required: a client without a certificate gets no answer at all.
try:
    client(with_certificate=False).is_server_live()
    raise AssertionError("a client without a certificate was answered")
except InferenceServerException:
    pass

print(f"tritonclient tls: {len(got)} rows match xgboost, token and client certificate required")
