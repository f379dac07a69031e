"""Sends the demo churn model a stream of customers over KServe V2 (tritonclient), with
chosen features shifted, to watch drift appear:

    python examples/drift/shifted_traffic.py --shift return_rate=2
    mercator drift churn              # return_rate on top; curl :8002/metrics | grep drift_psi

Rows come from examples/churn/customers.csv (the training data), so without --shift the
stream looks like training and every PSI stays small. `--shift FEATURE=FACTOR` multiplies
a feature, as when customers' return rate doubles. Needs `pip install tritonclient[grpc]`.
"""

import argparse
import csv
import pathlib

import numpy as np
import tritonclient.grpc as grpcclient

CUSTOMERS = pathlib.Path(__file__).resolve().parent.parent / "churn" / "customers.csv"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="127.0.0.1:8001")
    ap.add_argument("--model", default="churn")
    ap.add_argument("--rows", type=int, default=2000, help="customers to send")
    ap.add_argument("--offset", type=int, default=0, help="first customer row to send")
    ap.add_argument("--batch", type=int, default=100, help="rows per request")
    ap.add_argument("--shift", action="append", default=[], metavar="FEATURE=FACTOR")
    args = ap.parse_args()

    with open(CUSTOMERS) as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for _, r in zip(range(args.offset + args.rows), reader)][args.offset :]
    features = header[1:13]
    x = np.array([[float(c) if c else np.nan for c in r[1:13]] for r in rows], dtype=np.float32)
    for spec in args.shift:
        name, factor = spec.split("=")
        if name not in features:
            raise SystemExit(f"unknown feature {name!r}; the model has {features}")
        x[:, features.index(name)] *= float(factor)

    client = grpcclient.InferenceServerClient(args.url)
    answered = {}
    for start in range(0, len(x), args.batch):
        chunk = x[start : start + args.batch]
        inp = grpcclient.InferInput("features", list(chunk.shape), "FP32")
        inp.set_data_from_numpy(chunk)
        result = client.infer(args.model, [inp])
        version = result.get_response().model_version
        answered[version] = answered.get(version, 0) + len(chunk)
    shifted = ", ".join(args.shift) or "nothing"
    print(f"sent {len(x)} customers ({shifted} shifted) to {args.model}; answered by {answered}")


main()
