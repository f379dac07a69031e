"""The model registry from Python, as ML engineers use it from a notebook: register a
version folder (what an exporter wrote), list models and versions, move aliases,
promote and roll back. The same calls as `mercator models …`, with the same scopes
(`models:read`, `models:write`, `models:promote`).
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

from mercator.v1 import registry_pb2

from .errors import InvalidArgument, call

MANIFEST = "mercator.json"
IGNORE_FILE = ".mercatorignore"


@dataclass
class ModelVersion:
    model: str
    version: int
    status: str  # "READY" or "ARCHIVED"
    aliases: list
    description: str
    tags: dict
    metrics: dict
    registered_by: str
    registered_at: Optional[_dt.datetime]
    files: list  # paths inside the version folder
    manifest: dict = field(repr=False, default_factory=dict)


@dataclass
class ModelSummary:
    name: str
    description: str
    latest_version: int
    aliases: dict  # alias → version
    traffic: list  # (alias, percent, shadow)


@dataclass
class AliasMove:
    model: str
    alias: str
    from_version: int  # 0 when the alias is new
    to_version: int


def _time(ts) -> Optional[_dt.datetime]:
    return ts.ToDatetime(tzinfo=_dt.timezone.utc) if ts.seconds or ts.nanos else None


def _version(v) -> ModelVersion:
    status = registry_pb2.VersionStatus.Name(v.status).removeprefix("VERSION_STATUS_")
    try:
        manifest = json.loads(v.manifest_json) if v.manifest_json else {}
    except ValueError:
        manifest = {}
    return ModelVersion(model=v.model, version=v.version, status=status, aliases=list(v.aliases),
                        description=v.description, tags=dict(v.tags), metrics=dict(v.metrics),
                        registered_by=v.registered_by, registered_at=_time(v.registered_at),
                        files=[f.path for f in v.files], manifest=manifest)


def _move(m) -> Optional[AliasMove]:
    if not m.alias:
        return None
    return AliasMove(model=m.model, alias=m.alias, from_version=m.from_version, to_version=m.to_version)


def _ignored(patterns: list, relative: str) -> bool:
    name = os.path.basename(relative)
    for p in patterns:
        p = p.rstrip("/")
        anchored = p.startswith("/")
        p = p.lstrip("/")
        if fnmatch.fnmatch(relative, p) or not anchored and fnmatch.fnmatch(name, p):
            return True
        if fnmatch.fnmatch(relative, p + "/*") or not anchored and any(
                fnmatch.fnmatch(part, p) for part in relative.split("/")[:-1]):
            return True
    return False


def read_folder(folder: str) -> dict:
    """The files of a version folder (relative path → bytes), as the CLI reads them: every
    file but those `.mercatorignore` leaves out (glob patterns, one per line, `#` for
    comments; a `!` re-include is refused — use the CLI, which reads full gitignore rules)."""
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        raise InvalidArgument(f"folder: {folder} has no {MANIFEST} (write one with mercator.export)")
    patterns = []
    ignore = os.path.join(folder, IGNORE_FILE)
    if os.path.isfile(ignore):
        with open(ignore) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("!"):
                    raise InvalidArgument(f"{ignore}: '{line}': re-includes are not read here; "
                                          "register with `mercator models register`")
                patterns.append(line)
    files = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            if relative == IGNORE_FILE or _ignored(patterns, relative):
                continue
            with open(path, "rb") as f:
                files[relative] = f.read()
    return files


class Registry:
    """Versions, aliases and promotions of the server's models."""

    def __init__(self, stub, metadata, timeout):
        self._stub, self._metadata, self._timeout = stub, metadata, timeout

    def _call(self, method, request):
        return call(getattr(self._stub, method), request, self._metadata, self._timeout)

    def register(self, model: str, folder: str, alias: Optional[str] = None, description: str = "",
                 tags: Optional[Mapping[str, str]] = None,
                 metrics: Optional[Mapping[str, float]] = None) -> ModelVersion:
        """Uploads a version folder (an exporter's output) as the next version of `model`,
        optionally pointing `alias` at it. Needs `models:write` (`models:promote` too for
        `champion`)."""
        files = read_folder(folder)
        request = registry_pb2.RegisterVersionRequest(
            model=model, description=description, alias=alias or "",
            tags=dict(tags or {}), metrics={k: float(v) for k, v in (metrics or {}).items()},
            files=[registry_pb2.UploadFile(path=p, content=c) for p, c in files.items()])
        return _version(self._call("RegisterVersion", request).version)

    def list_models(self) -> list:
        """Every model with its latest version, aliases and traffic split."""
        r = self._call("ListModels", registry_pb2.ListModelsRequest())
        return [ModelSummary(name=m.name, description=m.description, latest_version=m.latest_version,
                             aliases={a.name: a.version for a in m.aliases},
                             traffic=[(t.alias, t.percent, t.shadow) for t in m.traffic])
                for m in r.models]

    def versions(self, model: str) -> list:
        """The versions of `model`, oldest first."""
        r = self._call("GetModel", registry_pb2.GetModelRequest(model=model))
        return sorted((_version(v) for v in r.versions), key=lambda v: v.version)

    def get_version(self, model: str, version: Optional[int] = None, alias: Optional[str] = None) -> ModelVersion:
        """One version, by number or by alias (the champion when neither is given)."""
        if version is not None and alias is not None:
            raise InvalidArgument("version, alias: give one, not both")
        request = registry_pb2.GetVersionRequest(model=model)
        if version is not None:
            request.version = int(version)
        else:
            request.alias = alias or "champion"
        return _version(self._call("GetVersion", request).version)

    def set_alias(self, model: str, alias: str, version: int, reason: str = "") -> AliasMove:
        """Points `alias` at `version` (the servers pick it up without dropping a request)."""
        r = self._call("SetAlias", registry_pb2.SetAliasRequest(model=model, alias=alias,
                                                                version=int(version), reason=reason))
        return _move(r.move)

    def promote(self, model: str, version: int, reason: str = "") -> AliasMove:
        """Makes `version` the champion; the previous champion stays reachable as
        `previous`. Needs `models:promote`."""
        r = self._call("Promote", registry_pb2.PromoteRequest(model=model, version=int(version), reason=reason))
        return _move(r.champion)

    def rollback(self, model: str, alias: str = "champion", reason: str = "") -> AliasMove:
        """Moves `alias` back to the version it pointed at before its last move."""
        r = self._call("RollbackAlias", registry_pb2.RollbackAliasRequest(model=model, alias=alias, reason=reason))
        return _move(r.move)
