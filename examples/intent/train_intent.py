"""Trains the demo intent classifier on train.csv and reports it on heldout.csv.

    python make_data.py && python train_intent.py     # needs torch, safetensors, numpy

A fastText-like net (mean of hashed word, bigram and character n-gram embeddings, then a
linear layer and softmax) over Mercator's reference text pipeline (`mercator.text`, in
python/), so the server computes the same ids; the mercator package's text exporter
writes the weights and the manifest. Writes model.safetensors, mercator.json (labels,
actions, hand-off settings, held-out figures) and expected.json (held-out texts and
PyTorch's probabilities, for the server's test).
"""

import csv
import json
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../python/src"))  # the package, when not installed
from mercator import text as pipeline  # noqa: E402
from mercator.export import export_text  # noqa: E402
SPEC = {"buckets": 8192, "word_ngrams": 2, "char_ngrams": [3, 4, 5], "max_ids": 256, "max_chars": 1000}
THRESHOLD = 0.5
ACTIONS = {
    "order_status": "show_tracking", "cancel_order": "open_cancellation",
    "return_item": "start_return", "refund_status": "show_refund_status",
    "change_delivery_address": "edit_delivery_address", "delivery_problem": "open_delivery_claim",
    "product_availability": "show_stock", "payment_problem": "open_payment_support",
    "discount_code": "explain_discounts", "account": "open_account_settings",
    "complaint": "escalate_complaint", "talk_to_human": "transfer_to_agent",
}


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return [(r["text"], r["intent"]) for r in csv.DictReader(f)]


def batch(texts):
    x = torch.zeros((len(texts), SPEC["max_ids"]), dtype=torch.long)
    for i, t in enumerate(texts):
        row = pipeline.ids(t, SPEC)
        if row:
            x[i, : len(row)] = torch.tensor(row)
    return x


train, held = load("train.csv"), load("heldout.csv")
labels = sorted(ACTIONS)
x, y = batch([t for t, _ in train]), torch.tensor([labels.index(i) for _, i in train])
hx, hy = batch([t for t, _ in held]), torch.tensor([labels.index(i) for _, i in held])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.EmbeddingBag(SPEC["buckets"] + 1, 32, mode="mean", padding_idx=0)
        self.out = nn.Linear(32, len(labels))

    def forward(self, ids):
        return torch.softmax(self.out(self.emb(ids)), dim=-1)


torch.manual_seed(2026)
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=0.02)
for epoch in range(12):
    perm = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        idx = perm[i : i + 64]
        opt.zero_grad()
        nn.functional.nll_loss(torch.log(net(x[idx]) + 1e-9), y[idx]).backward()
        opt.step()
net.eval()
with torch.no_grad():
    p = net(hx)
top_p, top = p.max(dim=1)
accuracy = float((top == hy).float().mean())
handoff = ((top_p < THRESHOLD) | (top == labels.index("talk_to_human"))).float().mean()
print(f"held-out accuracy {accuracy:.3f}, hand-off rate {float(handoff):.3f} "
      f"(of which low confidence {float((top_p < THRESHOLD).float().mean()):.3f})")


def write(net, out_dir, training):
    """model.safetensors and mercator.json: labels, actions and hand-off settings."""
    export_text(net, out_dir, labels=labels, text=SPEC, layers=[net.emb, net.out, "softmax"],
                actions=ACTIONS, handoff_threshold=THRESHOLD, handoff_intents=["talk_to_human"],
                description="Support chatbot intents (synthetic demo data)", max_batch_size=256,
                extra={"training": training, "quality": {"kind": "classification"}}, overwrite=True)


write(net, HERE, {"library": "torch " + torch.__version__, "rows": len(train),
                  "heldout_rows": len(held), "heldout_accuracy": round(accuracy, 4),
                  "heldout_handoff_rate": round(float(handoff), 4)})
sample = held[:32]
with torch.no_grad():
    probs = net(batch([t for t, _ in sample]))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"texts": [t for t, _ in sample], "intents": [i for _, i in sample],
               "probabilities": probs.tolist()}, f, ensure_ascii=False)
