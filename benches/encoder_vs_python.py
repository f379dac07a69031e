"""The sentence-encoder intent model (all-MiniLM-L6-v2 and its head), Mercator against
the Python sentence-transformers pipeline, on the same CPU in the same run. A benchmark,
not a test: it asserts no time; compare the ratios it prints, on the machine it ran on.

    cargo build --release -p mercator-server --bin mercator
    MERCATOR_MINILM_DIR=$(.venv/bin/python examples/intent/fetch_encoder.py) \
      .venv/bin/python benches/encoder_vs_python.py [--seconds 8]

- Mercator: `mercator serve --demo` (the intent model on the encoder, dynamic batching of
  up to 32 messages), driven by h2load (one thread, a pre-serialised `Intent/Classify`
  frame): one call at a time (latency per message, median and p99 from h2load's log),
  and 32 in flight (4 connections x 8 streams: messages per second).
- Python: `SentenceTransformer.encode` and the same head in numpy, in this process with
  torch's default threads: one message at a time (latency), and 32 messages per
  `encode` call (its best throughput, batched as Mercator batches them).

Both read the same message (a held-out one of typical length).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python/src"))
GRPC, HTTP = "127.0.0.1:18201", "127.0.0.1:18202"
MESSAGE = "hallo the tracking says delivered, i have nothing? can you check order 514655"


def frame(message) -> bytes:
    body = message.SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


def ready(seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HTTP}/v2/models/intent/ready") as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the demo intent model never became ready")


def h2load(body, connections, streams, seconds, log=None):
    cmd = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{seconds}", "-d", body,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           f"http://{GRPC}/mercator.v1.Intent/Classify"]
    if log:
        cmd[1:1] = ["--log-file", log]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    if not rate:
        raise SystemExit(f"h2load printed no totals:\n{out[-2000:]}")
    return float(rate.group(1))


def mercator(seconds):
    from mercator.v1 import intent_pb2
    with tempfile.TemporaryDirectory() as tmp:
        body = os.path.join(tmp, "body")
        with open(body, "wb") as f:
            f.write(frame(intent_pb2.ClassifyRequest(text=MESSAGE.encode())))
        server = subprocess.Popen(
            [os.path.join(ROOT, "target/release/mercator"), "serve", "--demo", "--data-dir",
             os.path.join(tmp, "data"), "--grpc-addr", GRPC, "--metrics-addr", HTTP],
            env=dict(os.environ, MERCATOR_PREDICTION_LOG__ENABLED="false"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready()
            h2load(body, 1, 1, 2)
            log = os.path.join(tmp, "h2load.log")
            h2load(body, 1, 1, seconds, log)
            with open(log) as f:
                times = sorted(int(line.split("\t")[2]) for line in f if line.strip())
            h2load(body, 4, 8, 2)
            rate = h2load(body, 4, 8, seconds)
        finally:
            server.terminate()
            server.wait()
    return {"p50_ms": times[len(times) // 2] / 1e3, "p99_ms": times[int(len(times) * 0.99)] / 1e3,
            "per_second": rate}


def python(seconds):
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(os.environ["MERCATOR_MINILM_DIR"], device="cpu")
    head = load_file(os.path.join(ROOT, "examples/intent/encoder/head.safetensors"))

    def classify(texts):
        e = model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
        z = e @ head["head.weight"].T + head["head.bias"]
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    classify([MESSAGE] * 32)
    times, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        classify([MESSAGE])
        times.append(time.perf_counter() - t)
    times.sort()
    done, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        classify([MESSAGE] * 32)
        done += 32
    return {"p50_ms": times[len(times) // 2] * 1e3, "p99_ms": times[int(len(times) * 0.99)] * 1e3,
            "per_second": done / (time.monotonic() - start)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    if "MERCATOR_MINILM_DIR" not in os.environ:
        raise SystemExit("set MERCATOR_MINILM_DIR (examples/intent/fetch_encoder.py prints it)")
    m = mercator(args.seconds)
    p = python(args.seconds)
    print(f"{'':28}{'Mercator':>12}{'Python':>12}{'ratio':>10}")
    print(f"{'batch 1, p50 per message':28}{m['p50_ms']:>10.2f}ms{p['p50_ms']:>10.2f}ms"
          f"{p['p50_ms'] / m['p50_ms']:>9.2f}x")
    print(f"{'batch 1, p99 per message':28}{m['p99_ms']:>10.2f}ms{p['p99_ms']:>10.2f}ms"
          f"{p['p99_ms'] / m['p99_ms']:>9.2f}x")
    print(f"{'32 in flight, messages/s':28}{m['per_second']:>12.0f}{p['per_second']:>12.0f}"
          f"{m['per_second'] / p['per_second']:>9.2f}x")


if __name__ == "__main__":
    main()
