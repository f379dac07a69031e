"""Seeds for the v2_request fuzz target: ModelInferRequests as tritonclient builds them,
each behind the byte that picks the model (0 churn, 1 intent, 2 the neural demand
forecaster; see fuzz/src/lib.rs). Raw and typed contents, entity keys, requested
outputs, parameters, and a few that the server must refuse. Run from the repository
root with a Python that has tritonclient[grpc]:

    .venv/bin/python fuzz/make_v2_seeds.py    # writes fuzz/corpus/v2_request/seed-*
"""
import hashlib
import pathlib
import struct

import numpy as np
from tritonclient.grpc import service_pb2 as pb

OUT = pathlib.Path("fuzz/corpus/v2_request")


def raw_bytes(items):
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def tensor(req, name, datatype, shape):
    t = req.inputs.add()
    t.name, t.datatype = name, datatype
    t.shape.extend(shape)
    return t


def request(model, **params):
    req = pb.ModelInferRequest(model_name=model, id="seed")
    for k, v in params.items():
        if isinstance(v, str):
            req.parameters[k].string_param = v
        else:
            req.parameters[k].int64_param = v
    return req


def seeds():
    rng = np.random.default_rng(7)
    # churn: raw FP32 features, typed features, entity keys raw and typed, outputs.
    r = request("churn")
    tensor(r, "features", "FP32", [2, 12])
    r.raw_input_contents.append(rng.random((2, 12), dtype=np.float32).tobytes())
    yield 0, r
    r = request("churn", entity_key="C100042")
    tensor(r, "features", "FP32", [1, 12]).contents.fp32_contents.extend([0.5] * 11 + [float("nan")])
    r.outputs.add().name = "churn_margin"
    yield 0, r
    r = request("churn")
    tensor(r, "customer_id", "BYTES", [3])
    r.raw_input_contents.append(raw_bytes([b"C100042", b"C109604", b"nobody"]))
    yield 0, r
    r = request("churn")
    tensor(r, "customer_id", "BYTES", [2, 1]).contents.bytes_contents.extend([b"C1", b"C2"])
    yield 0, r
    r = request("churn")  # wrong dtype and shape: refused
    tensor(r, "features", "FP64", [1, 11])
    r.raw_input_contents.append(np.zeros(11).tobytes())
    yield 0, r
    # intent: texts raw and typed, with a wanted output.
    r = request("intent")
    tensor(r, "text", "BYTES", [2])
    r.raw_input_contents.append(raw_bytes(["my coupon code is not working".encode(), "wo ist mein Paket?".encode()]))
    yield 1, r
    r = request("intent")
    tensor(r, "text", "BYTES", [1]).contents.bytes_contents.append("talk to a human 🙂".encode())
    r.outputs.add().name = "probabilities"
    yield 1, r
    # demand forecaster: a NaN-padded history and its last dates.
    r = request("demand")
    tensor(r, "history", "FP32", [2, 60])  # the net reads the last 56 days
    h = rng.poisson(20, (2, 60)).astype(np.float32)
    h[1, :4] = np.nan  # a shorter series, NaN-padded in front
    r.raw_input_contents.append(h.tobytes())
    tensor(r, "last_date", "BYTES", [2])
    r.raw_input_contents.append(raw_bytes([b"2026-10-31", b"2026-10-30"]))
    yield 2, r
    r = request("demand")
    tensor(r, "history", "FP32", [1, 56]).contents.fp32_contents.extend([10.0] * 56)
    tensor(r, "last_date", "BYTES", [1]).contents.bytes_contents.append(b"2026-02-28")
    r.outputs.add().name = "quantiles"
    yield 2, r


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for pick, req in seeds():
        data = bytes([pick]) + req.SerializeToString()
        name = "seed-" + hashlib.sha1(data).hexdigest()
        (OUT / name).write_bytes(data)
        print(OUT / name, len(data))


if __name__ == "__main__":
    main()
