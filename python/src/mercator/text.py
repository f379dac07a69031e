"""The reference text pipeline of Mercator's `text` model kind, in Python.

Must compute exactly what `runtime/src/kinds/text.rs` computes: NFKC, lower case; tokens
are runs of letters, marks and numbers (Unicode categories L*, M*, N*), each other
symbol (So) is a token of its own, the rest separates; features w:<token>,
b:<token> <token> (word_ngrams 2), c:<char n-gram of "<token>"> for each n in
char_ngrams; id = 1 + FNV-1a-32(UTF-8) % buckets; at most max_ids ids; 0 pads.
"""

import unicodedata

WORDY = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"}


def tokens(text):
    out, word = [], ""
    for c in unicodedata.normalize("NFKC", text).lower():
        cat = unicodedata.category(c)
        if cat in WORDY:
            word += c
            continue
        if word:
            out.append(word)
            word = ""
        if cat == "So":
            out.append(c)
    if word:
        out.append(word)
    return out


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def ids(text, spec):
    toks = tokens(text)
    feats = [f"w:{t}" for t in toks]
    if spec.get("word_ngrams", 1) >= 2:
        feats += [f"b:{a} {b}" for a, b in zip(toks, toks[1:])]
    for t in toks:
        marked = f"<{t}>"
        for n in spec.get("char_ngrams", []):
            feats += [f"c:{marked[i:i + n]}" for i in range(len(marked) - n + 1)]
    return [1 + fnv1a32(f.encode()) % spec["buckets"] for f in feats][: spec["max_ids"]]
