"""Writing a version folder: the manifest and its files, ready for
`mercator models register NAME DIR`."""

from __future__ import annotations

import json
import os
from typing import Mapping

from .._needs import require  # noqa: F401 - the exporters' import of it


def write_version(out_dir: str, manifest: dict, files: Mapping[str, bytes], overwrite: bool = False) -> str:
    """Writes `files` and `mercator.json` into `out_dir` (created if need be). An existing
    manifest is kept unless `overwrite`: a folder someone edited is not lost."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "mercator.json")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    for name, data in files.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return out_dir


def bindings(view: str | None, names) -> list:
    """Feature-store bindings (`view:name`) for each column, when a view is given."""
    return [{"feature": f"{view}:{n}"} for n in names] if view else []
