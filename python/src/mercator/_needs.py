"""Optional libraries, imported when a call needs them."""

from __future__ import annotations

import importlib


def require(module: str, extra: str, caller: str):
    """`module`, imported; when it is not installed, an error that says which extra of
    the package brings it (a training environment may have installed only the client)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"{caller} needs {e.name}: pip install 'mercator-serving[{extra}]' "
            f"(or './python[{extra}]' from a checkout)", name=e.name) from e
