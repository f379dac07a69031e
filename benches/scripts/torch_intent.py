"""Times the demo intent model in PyTorch (one thread) with the Python reference
pipeline, on the same held-out texts as `cargo bench --bench kinds`.

    python benches/scripts/torch_intent.py     # needs torch, safetensors
"""

import csv
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
sys.path.insert(0, os.path.join(ROOT, "python/src"))
from mercator import text as pipeline  # noqa: E402

torch.set_num_threads(1)
m = json.load(open(os.path.join(ROOT, "examples/intent/mercator.json")))
w = load_file(os.path.join(ROOT, "examples/intent/model.safetensors"))
emb = torch.nn.EmbeddingBag.from_pretrained(w["emb.weight"], mode="mean", padding_idx=0)
spec = m["text"]
texts = [r["text"] for r in csv.DictReader(open(os.path.join(ROOT, "examples/intent/heldout.csv")))]


def classify(batch):
    ids = torch.zeros((len(batch), spec["max_ids"]), dtype=torch.long)
    for i, t in enumerate(batch):
        row = pipeline.ids(t, spec)
        if row:
            ids[i, : len(row)] = torch.tensor(row)
    with torch.no_grad():
        return torch.softmax(emb(ids) @ w["out.weight"].T + w["out.bias"], dim=-1)


for n in (1, 64):
    batch = texts[:n]
    classify(batch)
    reps = 2000 // n + 20
    start = time.perf_counter()
    for _ in range(reps):
        classify(batch)
    per_call = (time.perf_counter() - start) / reps
    print(f"torch {torch.__version__}, {n} texts: {per_call * 1e6:.1f} us per call, {n / per_call:.0f} texts/s")
