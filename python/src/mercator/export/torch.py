"""PyTorch feed-forward nets as `candle` versions (an MLP over a feature vector) or
`text` versions (an embedding bag over hashed text features, then layers): the
`state_dict` saved as safetensors, and the manifest's layer list read off the modules.

A `torch.nn.Sequential` lists its layers itself. A custom module whose `forward` calls
its parts in some order cannot be read: pass `layers=[net.fc1, "relu", net.fc2, ...]`,
modules of the net and activation names, in the order `forward` applies them.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from ._folder import require, write_version

ACTIVATIONS = {"relu", "tanh", "sigmoid", "softmax", "gelu", "dropout"}


def _nn():
    return require("torch.nn", "torch", "export_mlp/export_text")


def _walk(modules, names, out):
    nn = _nn()

    for m in modules:
        if isinstance(m, str):
            if m not in ACTIVATIONS:
                raise ValueError(f"unknown activation '{m}' (one of {sorted(ACTIVATIONS)})")
            out.append({"type": m})
            continue
        if isinstance(m, nn.Sequential):
            _walk(list(m.children()), names, out)
            continue
        name = names.get(id(m))
        if name is None:
            raise ValueError(f"{m!r} is not a part of the model being exported")
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.Linear):
            layer = {"type": "linear", "weight": prefix + "weight"}
            if m.bias is not None:
                layer["bias"] = prefix + "bias"
            out.append(layer)
        elif isinstance(m, nn.ReLU):
            out.append({"type": "relu"})
        elif isinstance(m, nn.Tanh):
            out.append({"type": "tanh"})
        elif isinstance(m, nn.Sigmoid):
            out.append({"type": "sigmoid"})
        elif isinstance(m, nn.GELU):
            out.append({"type": "gelu", "approximate": m.approximate})
        elif isinstance(m, nn.Softmax):
            if m.dim not in (None, -1, 1):
                raise ValueError("softmax must be over the features (dim=-1)")
            out.append({"type": "softmax"})
        elif isinstance(m, nn.Dropout):
            out.append({"type": "dropout", "p": float(m.p)})
        elif isinstance(m, nn.Identity):
            continue
        elif isinstance(m, nn.LayerNorm):
            if len(m.normalized_shape) != 1:
                raise ValueError("layer norm must be over the last dimension only")
            layer = {"type": "layer_norm", "eps": float(m.eps)}
            if m.weight is not None:
                layer["weight"] = prefix + "weight"
            if m.bias is not None:
                layer["bias"] = prefix + "bias"
            out.append(layer)
        elif isinstance(m, nn.EmbeddingBag):
            if m.mode not in ("mean", "sum"):
                raise ValueError(f"embedding bag mode '{m.mode}' is not supported (mean or sum)")
            layer = {"type": "embedding_bag", "weight": prefix + "weight", "mode": m.mode}
            if m.padding_idx is not None:
                layer["padding_idx"] = int(m.padding_idx)
            out.append(layer)
        else:
            raise ValueError(f"{type(m).__name__} has no Mercator layer (linear, relu, gelu, tanh, "
                             "sigmoid, softmax, layer_norm, dropout, embedding_bag)")


def layer_list(model, layers: Optional[Sequence] = None) -> list:
    """The manifest's `layers` for `model` (see the module's doc)."""
    nn = _nn()

    if layers is None:
        if not isinstance(model, nn.Sequential):
            raise ValueError("the model is not an nn.Sequential: pass layers=[...] in forward's order")
        layers = [model]
    names = {id(m): n for n, m in model.named_modules()}
    out: list = []
    _walk(list(layers), names, out)
    if not out:
        raise ValueError("no layers")
    return out


def _weights(model) -> bytes:
    save = require("safetensors.torch", "torch", "export_mlp/export_text").save
    return save({k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()})


def _width(model, layers, which):
    """The input width of the first linear layer, or the output width of the last."""
    wanted = [entry["weight"] for entry in layers if entry["type"] == "linear"]
    if not wanted:
        raise ValueError("the net has no linear layer")
    state = model.state_dict()
    weight = state[wanted[0] if which == "in" else wanted[-1]]
    return int(weight.shape[1] if which == "in" else weight.shape[0])


def export_mlp(model, out_dir: str, *, layers: Optional[Sequence] = None, input_name: str = "input",
               output_name: str = "output", feature_names: Optional[Sequence[str]] = None,
               inputs: Optional[Sequence[Mapping]] = None, outputs: Optional[Sequence[Mapping]] = None,
               extra: Optional[Mapping] = None, description: str = "", max_batch_size: int = 0,
               overwrite: bool = False) -> str:
    """Writes a feed-forward net over a FP32 feature vector (`[rows, features]` in,
    `[rows, outputs]` out) as a `candle` version. `inputs` and `outputs` replace that
    signature, and `extra` adds manifest sections: a neural forecaster takes `history` and
    `last_date` and gives `mean` and `quantiles`, with `forecaster`, `quantiles` and
    `history` sections (see examples/demand/train_nn.py)."""
    entries = layer_list(model, layers)
    if entries[0]["type"] == "embedding_bag":
        raise ValueError("a net starting with an embedding bag takes ids or text: use export_text")
    width_in, width_out = _width(model, entries, "in"), _width(model, entries, "out")
    model_input = {"name": input_name, "datatype": "FP32", "shape": [-1, width_in]}
    if feature_names is not None:
        if len(feature_names) != width_in:
            raise ValueError(f"{len(feature_names)} feature names for {width_in} inputs")
        model_input["feature_names"] = list(feature_names)
    manifest = {
        "kind": "candle",
        "weights": "model.safetensors",
        "description": description or "A PyTorch feed-forward net, exported by the mercator package",
        "inputs": [dict(i) for i in inputs] if inputs else [model_input],
        "outputs": ([dict(o) for o in outputs] if outputs
                    else [{"name": output_name, "datatype": "FP32", "shape": [-1, width_out]}]),
        "layers": entries,
    }
    if max_batch_size:
        manifest["max_batch_size"] = max_batch_size
    manifest.update(extra or {})
    return write_version(out_dir, manifest, {"model.safetensors": _weights(model)}, overwrite)


def export_text(model, out_dir: str, *, labels: Sequence[str], text: Mapping, layers: Optional[Sequence] = None,
                actions: Optional[Mapping[str, str]] = None, handoff_threshold: Optional[float] = None,
                handoff_intents: Sequence[str] = ("talk_to_human",), description: str = "",
                max_batch_size: int = 256, extra: Optional[Mapping] = None, overwrite: bool = False) -> str:
    """Writes a text classifier — an embedding bag over the ids `mercator.text.ids`
    computes with the settings `text` (buckets, word_ngrams, char_ngrams, max_ids,
    max_chars), then layers — as a `text` version: text in, one probability per label
    out. `actions`, `handoff_threshold` and `handoff_intents` drive the Intent API."""
    entries = layer_list(model, layers)
    if entries[0]["type"] != "embedding_bag":
        raise ValueError("a text model starts with an embedding bag")
    width_out = _width(model, entries, "out")
    if len(labels) != width_out:
        raise ValueError(f"{len(labels)} labels for {width_out} outputs")
    manifest = {
        "kind": "text",
        "weights": "model.safetensors",
        "description": description or "A PyTorch text classifier, exported by the mercator package",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, width_out]}],
        "max_batch_size": max_batch_size,
        "text": dict(text),
        "labels": list(labels),
        "layers": entries,
    }
    if actions:
        manifest["actions"] = dict(actions)
    if handoff_threshold is not None:
        manifest["handoff_threshold"] = float(handoff_threshold)
        manifest["handoff_intents"] = list(handoff_intents)
    manifest.update(extra or {})
    return write_version(out_dir, manifest, {"model.safetensors": _weights(model)}, overwrite)
