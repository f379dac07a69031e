"""The light-client benchmark: h2load (one thread, pre-serialised gRPC frames) against
Mercator and against a no-op V2 server (the gRPC floor), in the same run, with the
server's own CPU time per call read from /proc. A benchmark, not a test: it asserts no
time; compare the ratios it prints, on the machine it ran on.

    cargo build --release -p mercator-server -p mercator-benches --bin mercator --bin noop_server
    .venv/bin/python benches/light_client.py [--seconds 10]

Needs h2load (Debian's nghttp2-client) and a Python with xgboost, numpy, tritonclient and
the mercator package (the .venv scripts/test.sh makes). Cases:

- `trees`: an XGBoost model of 100 trees of depth 6 over 32 FP32 features (trained here
  on random data), V2 `ModelInfer` with the tensor: 1 row and 64 rows with 32 calls in
  flight (4 connections x 8 streams), and 1 row serial (p99 from h2load's request log);
- the demo's typed paths, 1 entity, 32 in flight: V2 by customer id (features read from
  the embedded store), `Churn/Score`, `Intent/Classify`, `Forecasting/Forecast`;
- dynamic batching: the demo intent net and neural forecaster registered again with a
  `dynamic_batching` section (at most 32 rows, 200 µs delay), 32 in flight and serial
  (p99), beside the unbatched originals in the same server.

`--cases TEXT` runs only the cases whose name contains TEXT; `--profile DIR` has perf
sample Mercator during each case (one perf.data file per case, with DWARF call graphs).

Each is compared with the floor answering the same number of calls with a frame of the
same size (the typed paths: the 1-row frame). h2load counts HTTP answers, so the server's
own `mercator_grpc_requests_total` is read too: every measured call must have been OK.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
GRPC, HTTP, FLOOR = "127.0.0.1:18101", "127.0.0.1:18102", "127.0.0.1:18103"
TICK = os.sysconf("SC_CLK_TCK")


def frame(message) -> bytes:
    body = message.SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


def cpu_seconds(pid) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def wait_http(url, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never answered 200")


def ok_calls(method) -> float:
    with urllib.request.urlopen(f"http://{HTTP}/metrics") as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("mercator_grpc_requests_total{") and f'method="{method}"' in line \
                and 'code="OK"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def batch_rows(model) -> tuple:
    """(rows, executions) so far in `mercator_batch_rows` of `model`'s version 1."""
    with urllib.request.urlopen(f"http://{HTTP}/metrics") as r:
        text = r.read().decode()
    found = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f'mercator_batch_rows_{part}{{model="{model}",version="1"}}'):
                found[part] = float(line.rsplit(" ", 1)[1])
    return found.get("sum", 0.0), found.get("count", 0.0)


def h2load(addr, path, body_file, connections, streams, seconds, log=None):
    cmd = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{seconds}", "-d", body_file,
           "-H", "content-type: application/grpc", "-H", "te: trailers", f"http://{addr}{path}"]
    if log:
        cmd[1:1] = ["--log-file", log]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", out)
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    if not (done and rate):
        raise SystemExit(f"h2load against {addr}{path} printed no totals:\n{out[-2000:]}")
    return int(done.group(1)), float(rate.group(1))


def measure(pid, addr, path, body_file, connections, streams, seconds, method=None, profile=None):
    """req/s, server CPU µs per call, p99 µs (serial runs), after a 1 s warm-up. With
    `profile` (a file name), perf samples the server during the measured run."""
    h2load(addr, path, body_file, connections, streams, 1)
    before_ok = ok_calls(method) if method else None
    log = tempfile.mktemp(suffix=".log") if connections * streams == 1 else None
    perf = None
    if profile:
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(pid),
                                 "-o", profile], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    cpu0 = cpu_seconds(pid)
    done, rate = h2load(addr, path, body_file, connections, streams, seconds, log)
    cpu = cpu_seconds(pid) - cpu0
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    if method:
        ok = ok_calls(method) - before_ok
        if ok < done:
            raise SystemExit(f"{path}: h2load saw {done} answers but only {ok:.0f} were OK")
    p99 = None
    if log:
        with open(log) as f:
            times = sorted(int(line.split("\t")[2]) for line in f if line.strip())
        os.unlink(log)
        p99 = times[int(len(times) * 0.99)] if times else None
    return {"rate": rate, "cpu_us": cpu / max(done, 1) * 1e6, "p99_us": p99}


def bench_model(tmp, mercator):
    import xgboost as xgb

    from mercator.export import export_xgboost

    rng = np.random.default_rng(17)
    x = rng.normal(size=(20000, 32)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) + rng.normal(0, 1, 20000) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.1,
                         "base_score": 0.5}, xgb.DMatrix(x, label=y), num_boost_round=100)
    folder = export_xgboost(booster, os.path.join(tmp, "trees"))
    subprocess.run([mercator, "models", "--server", f"http://{GRPC}", "register", "trees", folder,
                    "--alias", "champion"], check=True, capture_output=True)
    wait_http(f"http://{HTTP}/v2/models/trees/ready")
    return x


BATCHING = {"max_batch_size": 32, "max_queue_delay_microseconds": 200}


def batched_copies(tmp, mercator):
    """The demo intent net and neural forecaster registered again as `intent_batched`
    and `demand_batched`, with a dynamic_batching section: the same models, batching on,
    in the same server as the unbatched originals."""
    for source, name in (("intent", "intent_batched"), ("demand/net", "demand_batched")):
        folder = os.path.join(tmp, name)
        shutil.copytree(os.path.join(ROOT, "examples", source), folder)
        manifest_path = os.path.join(folder, "mercator.json")
        with open(manifest_path) as f:
            manifest = json.load(f)
        manifest["dynamic_batching"] = BATCHING
        with open(manifest_path, "w") as f:
            json.dump(manifest, f)
        subprocess.run([mercator, "models", "--server", f"http://{GRPC}", "register", name, folder,
                        "--alias", "champion"], check=True, capture_output=True)
        wait_http(f"http://{HTTP}/v2/models/{name}/ready")


def frames(tmp, x):
    from tritonclient.grpc import service_pb2 as v2

    from mercator.v1 import churn_pb2, forecasting_pb2, intent_pb2

    def tensor(rows):
        req = v2.ModelInferRequest(model_name="trees")
        req.inputs.add(name="features", datatype="FP32", shape=[rows, 32])
        req.raw_input_contents.append(x[:rows].tobytes())
        return req

    ids = v2.ModelInferRequest(model_name="churn")
    ids.inputs.add(name="customer_id", datatype="BYTES", shape=[1])
    ids.raw_input_contents.append(len(b"C100042").to_bytes(4, "little") + b"C100042")
    messages = {
        "trees_1": tensor(1),
        "trees_64": tensor(64),
        "ids_1": ids,
        "score_1": churn_pb2.ScoreRequest(customer_ids=["C100042"]),
        "classify": intent_pb2.ClassifyRequest(text=b"my coupon code is not working"),
        "forecast": forecasting_pb2.ForecastRequest(
            series=forecasting_pb2.SeriesId(sku_id="SKU000", location_id="berlin"), horizon_days=7),
        "classify_batched": intent_pb2.ClassifyRequest(model_name="intent_batched",
                                                       text=b"my coupon code is not working"),
        "forecast_batched": forecasting_pb2.ForecastRequest(
            model_name="demand_batched",
            series=forecasting_pb2.SeriesId(sku_id="SKU000", location_id="berlin"), horizon_days=7),
    }
    files = {}
    for name, message in messages.items():
        files[name] = os.path.join(tmp, f"{name}.bin")
        with open(files[name], "wb") as f:
            f.write(frame(message))
    return files


INFER = "/inference.GRPCInferenceService/ModelInfer"
CASES = [
    # name, path, frame, floor frame, connections, streams, metric method, rows
    ("trees, 1 row, 32 in flight", INFER, "trees_1", "trees_1", 4, 8, "ModelInfer", 1),
    ("trees, 64 rows, 32 in flight", INFER, "trees_64", "trees_64", 4, 8, "ModelInfer", 64),
    ("trees, 1 row, serial", INFER, "trees_1", "trees_1", 1, 1, "ModelInfer", 1),
    ("V2 by customer id, 32 in flight", INFER, "ids_1", "trees_1", 4, 8, "ModelInfer", 1),
    ("Churn/Score, 1 id, 32 in flight", "/mercator.v1.Churn/Score", "score_1", "trees_1", 4, 8, "Score", 1),
    ("Intent/Classify, 32 in flight", "/mercator.v1.Intent/Classify", "classify", "trees_1", 4, 8, "Classify", 1),
    ("Forecast, 7 days, 32 in flight", "/mercator.v1.Forecasting/Forecast", "forecast", "trees_1", 4, 8,
     "Forecast", 1),
    # Dynamic batching: the same models with batching on (max 32 rows, 200 µs delay).
    ("Intent/Classify batched, 32 in flight", "/mercator.v1.Intent/Classify", "classify_batched", "trees_1",
     4, 8, "Classify", 1),
    ("Forecast batched, 32 in flight", "/mercator.v1.Forecasting/Forecast", "forecast_batched", "trees_1",
     4, 8, "Forecast", 1),
    ("Intent/Classify, serial", "/mercator.v1.Intent/Classify", "classify", "trees_1", 1, 1, "Classify", 1),
    ("Intent/Classify batched, serial", "/mercator.v1.Intent/Classify", "classify_batched", "trees_1", 1, 1,
     "Classify", 1),
    ("Forecast, serial", "/mercator.v1.Forecasting/Forecast", "forecast", "trees_1", 1, 1, "Forecast", 1),
    ("Forecast batched, serial", "/mercator.v1.Forecasting/Forecast", "forecast_batched", "trees_1", 1, 1,
     "Forecast", 1),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="measured seconds per run")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--bin-dir", default=RELEASE, help="where mercator and noop_server are")
    ap.add_argument("--cases", default="", help="only the cases whose name contains this")
    ap.add_argument("--profile", help="a folder: perf samples Mercator in each case, one file per case")
    args = ap.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    mercator, noop = os.path.join(bin_dir, "mercator"), os.path.join(bin_dir, "noop_server")
    for binary in (mercator, noop):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} is missing: build the release binaries first (see --help)")
    tmp = tempfile.mkdtemp(prefix="mercator-light-")
    env = dict(os.environ, MERCATOR_LOG="warn")
    server = subprocess.Popen([mercator, "serve", "--demo", "--data-dir", os.path.join(tmp, "data"),
                               "--grpc-addr", GRPC, "--metrics-addr", HTTP], cwd=tmp, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "server.log"), "w"))
    floor = subprocess.Popen([noop, "--addr", FLOOR], stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://{HTTP}/v2/health/ready")
        x = bench_model(tmp, mercator)
        if any("batched" in c[0] and args.cases in c[0] for c in CASES):
            batched_copies(tmp, mercator)
        files = frames(tmp, x)
        results = []
        print(f"{'case':36} {'floor/s':>9} {'mercator/s':>11} {'ratio':>6} "
              f"{'floor CPU':>10} {'mercator CPU':>13} {'p99, vs floor':>15}")
        for name, path, body, floor_body, c, m, method, rows in CASES:
            if args.cases not in name:
                continue
            profile = None
            if args.profile:
                os.makedirs(args.profile, exist_ok=True)
                profile = os.path.join(args.profile, re.sub(r"\W+", "_", name).strip("_") + ".data")
            f = measure(floor.pid, FLOOR, INFER, files[floor_body], c, m, args.seconds)
            batched = {"classify_batched": "intent_batched", "forecast_batched": "demand_batched"}.get(body)
            before = batch_rows(batched) if batched else None
            s = measure(server.pid, GRPC, path, files[body], c, m, args.seconds, method, profile)
            if batched:
                rows_run, runs = (a - b for a, b in zip(batch_rows(batched), before))
                s["mean_batch"] = rows_run / runs if runs else None
            ratio = s["rate"] / f["rate"]
            p99 = f"{s['p99_us']}µs {s['p99_us'] / f['p99_us']:.2f}x" if s["p99_us"] and f["p99_us"] else ""
            unit = "rows" if rows > 1 else "calls"
            print(f"{name:36} {f['rate'] * rows:>9.0f} {s['rate'] * rows:>11.0f} {ratio:>6.2f} "
                  f"{f['cpu_us']:>8.1f}µs {s['cpu_us']:>11.1f}µs {p99:>15}  ({unit}/s; CPU per call)"
                  + (f"; {s['mean_batch']:.1f} rows per execution" if s.get("mean_batch") else ""))
            results.append({"case": name, "floor": f, "mercator": s, "ratio": ratio, "rows": rows})
        if args.json:
            with open(args.json, "w") as out:
                json.dump(results, out, indent=1)
    finally:
        for p in (server, floor):
            p.send_signal(signal.SIGTERM)
        for p in (server, floor):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
