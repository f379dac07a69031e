"""The feature store from Python: push rows of a view, and build a training set from an
entity dataframe (`get_historical_features`, Feast's call: point in time, each view's
TTL, every column of the entity dataframe kept).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

import grpc
from google.protobuf import timestamp_pb2

from mercator.v1 import feature_store_pb2

from ._needs import require
from .errors import InvalidArgument, MercatorError, call, from_status

EVENT_TIMESTAMP = "event_timestamp"
# Entity rows per GetHistoricalFeatures call: well inside the server's message limit.
CHUNK_ROWS = 10_000


@dataclass
class PushResult:
    written: int
    ignored_older: int


def _value(v, kind: Optional[str], field: str) -> feature_store_pb2.FeatureValue:
    """`v` as a feature value of the field's declared type `kind` (float32, float64,
    int64, string, bool, float32_list), or of `v`'s own Python type when unknown. A value
    that is not of the type raises `InvalidArgument` naming `field`."""
    if hasattr(v, "item") and not hasattr(v, "__len__"):  # a numpy scalar
        v = v.item()
    try:
        if kind == "float32":
            return feature_store_pb2.FeatureValue(float32=float(v))
        if kind == "float64":
            return feature_store_pb2.FeatureValue(float64=float(v))
        if kind == "int64":
            if isinstance(v, float) and not v.is_integer() or isinstance(v, str) and not v.strip().lstrip("-").isdigit():
                raise ValueError("not an integer")
            return feature_store_pb2.FeatureValue(int64=int(v))
        if kind == "string":
            return feature_store_pb2.FeatureValue(string=str(v))
        if kind == "bool":
            if not isinstance(v, bool):
                raise ValueError("not a bool")
            return feature_store_pb2.FeatureValue(bool=v)
        if kind == "float32_list" or isinstance(v, (list, tuple)) or hasattr(v, "__len__") and not isinstance(v, str):
            return feature_store_pb2.FeatureValue(float32_list=feature_store_pb2.FloatList(values=[float(x) for x in v]))
    except (TypeError, ValueError):
        raise InvalidArgument(f"{field}: {v!r} is not a {kind} value") from None
    if isinstance(v, bool):
        return feature_store_pb2.FeatureValue(bool=v)
    if isinstance(v, int):
        return feature_store_pb2.FeatureValue(int64=v)
    if isinstance(v, float):
        return feature_store_pb2.FeatureValue(float64=v)
    if isinstance(v, str):
        return feature_store_pb2.FeatureValue(string=v)
    raise InvalidArgument(f"{field}: {v!r} is not a bool, int, float, str or list of floats")


def _timestamp(when: _dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when.astimezone(_dt.timezone.utc))
    return ts


def _column(values: list, kind: str):
    """A feature column in pandas, of the field's type: float32/float64 with NaN for
    nulls, int64 and bool as pandas' nullable `Int64`/`boolean` (so a gap does not turn
    them into float64 or object), strings and lists as objects."""
    import numpy as np

    pd = require("pandas", "pandas", "get_historical_features")
    if kind in ("float32", "float64"):
        return np.array([np.nan if v is None else v for v in values], dtype=kind)
    if kind == "int64":
        return pd.array(values, dtype="Int64")
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    return pd.array(values, dtype=object)


def _python(v: feature_store_pb2.FeatureValue):
    which = v.WhichOneof("kind")
    if which is None:
        return None
    if which == "float32_list":
        return list(v.float32_list.values)
    return getattr(v, which)


class Features:
    """The feature store: push rows of a view, each value sent as its field's type, and
    point-in-time training sets."""

    def __init__(self, stub, metadata, timeout):
        self._stub, self._metadata, self._timeout = stub, metadata, timeout
        self._types: dict = {}
        self._keys: dict = {}

    def _definitions(self) -> None:
        r = call(self._stub.ListDefinitions, feature_store_pb2.ListDefinitionsRequest(),
                 self._metadata, self._timeout)
        keys = {e.name: list(e.join_keys) for e in r.entities}
        for v in r.feature_views:
            self._types[v.name] = {f.name: f.type for f in v.fields}
            self._keys[v.name] = keys.get(v.entity, [])

    def _fields(self, view: str) -> dict:
        """The declared type of each field of `view` (read once per view)."""
        if view not in self._types:
            try:
                self._definitions()
            except MercatorError as e:
                if e.code != grpc.StatusCode.PERMISSION_DENIED:
                    raise
                # A key that may write but not read: values go as their Python types.
                return {}
        return self._types.get(view, {})

    def push(self, view: str, rows: Iterable[Mapping]) -> PushResult:
        """Writes rows of `view`. Each row is a mapping with `entity_key` (a string, or a
        list of strings for a multi-key entity), `values` (field → value) and optionally
        `event_time` (a timezone-aware datetime; the time of this call, UTC, when left
        out). A value not of its field's type raises `InvalidArgument` naming it."""
        types = self._fields(view)
        request = feature_store_pb2.PushRequest(view=view)
        now = _dt.datetime.now(_dt.timezone.utc)
        for i, row in enumerate(rows):
            key = row.get("entity_key")
            if key is None:
                raise InvalidArgument(f"rows[{i}].entity_key: every row needs its entity key")
            pb = request.rows.add(entity_key=[key] if isinstance(key, str) else [str(k) for k in key])
            for name, value in row.get("values", {}).items():
                pb.values[name].CopyFrom(_value(value, types.get(name), f"rows[{i}].values[{name}]"))
            when = row.get("event_time") or now
            if when.tzinfo is None:
                raise InvalidArgument(f"rows[{i}].event_time: must be timezone-aware")
            pb.event_time.CopyFrom(_timestamp(when))
        r = call(self._stub.Push, request, self._metadata, self._timeout)
        return PushResult(written=r.written, ignored_older=r.ignored_older)

    def get_historical_features(self, entity_df, features: Sequence[str]):
        """A training set: `entity_df` (a pandas DataFrame with the entity's join key
        columns and `event_timestamp`, and anything else — labels are kept) with one
        column per feature (`view__field`), each the value the store held at that row's
        time within the view's TTL, of the field's type (nulls where nothing was known).
        `features` are `view:field` names of one entity. Needs `features:read`."""
        pd = require("pandas", "pandas", "get_historical_features")
        features = list(features)
        if not features:
            raise InvalidArgument("features: name at least one view:field")
        if not self._keys:
            self._definitions()
        kinds, join_keys = [], None
        for i, f in enumerate(features):
            view, _, name = f.partition(":")
            if view not in self._types:
                raise from_status(grpc.StatusCode.NOT_FOUND, f"features[{i}]: no feature view '{view}'")
            if name not in self._types[view]:
                raise from_status(grpc.StatusCode.NOT_FOUND, f"features[{i}]: view '{view}' has no field '{name}'")
            if join_keys is not None and self._keys[view] != join_keys:
                raise InvalidArgument(f"features[{i}]: '{f}' is keyed by {self._keys[view]}, earlier features by {join_keys}")
            join_keys = self._keys[view]
            kinds.append(self._types[view][name])
        for column in [*join_keys, EVENT_TIMESTAMP]:
            if column not in entity_df.columns:
                raise InvalidArgument(f"entity_df: no '{column}' column (it needs {join_keys} and {EVENT_TIMESTAMP})")
        names = [f.replace(":", "__", 1) for f in features]
        for i, n in enumerate(names):
            if n in entity_df.columns:
                raise InvalidArgument(f"features[{i}]: entity_df already has a column '{n}'")
        times = pd.to_datetime(entity_df[EVENT_TIMESTAMP], utc=True)
        if times.isna().any():
            raise InvalidArgument(f"entity_df.{EVENT_TIMESTAMP}[{int(times.isna().to_numpy().argmax())}]: no time")
        keys = [entity_df[k].astype(str).tolist() for k in join_keys]
        columns = [[None] * len(entity_df) for _ in features]
        for start in range(0, len(entity_df), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(entity_df))
            request = feature_store_pb2.GetHistoricalFeaturesRequest(features=features)
            for r in range(start, stop):
                row = request.entity_rows.add(values=[k[r] for k in keys])
                row.timestamp.CopyFrom(_timestamp(times.iloc[r].to_pydatetime()))
            try:
                for chunk in self._stub.GetHistoricalFeatures(request, metadata=self._metadata,
                                                              timeout=self._timeout):
                    for j, vector in enumerate(chunk.results):
                        for c, v in enumerate(vector.values):
                            columns[c][start + chunk.first_row + j] = _python(v)
            except grpc.RpcError as e:
                raise from_status(e.code(), e.details() or "") from None
        out = entity_df.copy()
        for name, values, kind in zip(names, columns, kinds):
            out[name] = _column(values, kind)
        return out
