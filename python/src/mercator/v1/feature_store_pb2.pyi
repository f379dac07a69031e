import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeatureStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_STATUS_UNSPECIFIED: _ClassVar[FeatureStatus]
    FEATURE_STATUS_PRESENT: _ClassVar[FeatureStatus]
    FEATURE_STATUS_MISSING: _ClassVar[FeatureStatus]
    FEATURE_STATUS_EXPIRED: _ClassVar[FeatureStatus]
FEATURE_STATUS_UNSPECIFIED: FeatureStatus
FEATURE_STATUS_PRESENT: FeatureStatus
FEATURE_STATUS_MISSING: FeatureStatus
FEATURE_STATUS_EXPIRED: FeatureStatus

class FloatList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class FeatureValue(_message.Message):
    __slots__ = ("float32", "float64", "int64", "string", "bool", "float32_list")
    FLOAT32_FIELD_NUMBER: _ClassVar[int]
    FLOAT64_FIELD_NUMBER: _ClassVar[int]
    INT64_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    FLOAT32_LIST_FIELD_NUMBER: _ClassVar[int]
    float32: float
    float64: float
    int64: int
    string: str
    bool: bool
    float32_list: FloatList
    def __init__(self, float32: _Optional[float] = ..., float64: _Optional[float] = ..., int64: _Optional[int] = ..., string: _Optional[str] = ..., bool: _Optional[bool] = ..., float32_list: _Optional[_Union[FloatList, _Mapping]] = ...) -> None: ...

class ApplyDefinitionsRequest(_message.Message):
    __slots__ = ("toml", "dry_run", "allow_removals")
    TOML_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ALLOW_REMOVALS_FIELD_NUMBER: _ClassVar[int]
    toml: str
    dry_run: bool
    allow_removals: bool
    def __init__(self, toml: _Optional[str] = ..., dry_run: _Optional[bool] = ..., allow_removals: _Optional[bool] = ...) -> None: ...

class ApplyDefinitionsResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, changes: _Optional[_Iterable[str]] = ...) -> None: ...

class ListDefinitionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EntityDefinition(_message.Message):
    __slots__ = ("name", "join_keys")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOIN_KEYS_FIELD_NUMBER: _ClassVar[int]
    name: str
    join_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., join_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class FieldDefinition(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class FeatureViewDefinition(_message.Message):
    __slots__ = ("name", "entity", "fields", "ttl_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    entity: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldDefinition]
    ttl_seconds: int
    def __init__(self, name: _Optional[str] = ..., entity: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldDefinition, _Mapping]]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class ListDefinitionsResponse(_message.Message):
    __slots__ = ("entities", "feature_views", "toml")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    TOML_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[EntityDefinition]
    feature_views: _containers.RepeatedCompositeFieldContainer[FeatureViewDefinition]
    toml: str
    def __init__(self, entities: _Optional[_Iterable[_Union[EntityDefinition, _Mapping]]] = ..., feature_views: _Optional[_Iterable[_Union[FeatureViewDefinition, _Mapping]]] = ..., toml: _Optional[str] = ...) -> None: ...

class PushRow(_message.Message):
    __slots__ = ("entity_key", "event_time", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    ENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    entity_key: _containers.RepeatedScalarFieldContainer[str]
    event_time: _timestamp_pb2.Timestamp
    values: _containers.MessageMap[str, FeatureValue]
    def __init__(self, entity_key: _Optional[_Iterable[str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., values: _Optional[_Mapping[str, FeatureValue]] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("view", "rows")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    view: str
    rows: _containers.RepeatedCompositeFieldContainer[PushRow]
    def __init__(self, view: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[PushRow, _Mapping]]] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("written", "ignored_older")
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    IGNORED_OLDER_FIELD_NUMBER: _ClassVar[int]
    written: int
    ignored_older: int
    def __init__(self, written: _Optional[int] = ..., ignored_older: _Optional[int] = ...) -> None: ...

class EntityKey(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class GetOnlineFeaturesRequest(_message.Message):
    __slots__ = ("features", "entities")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    entities: _containers.RepeatedCompositeFieldContainer[EntityKey]
    def __init__(self, features: _Optional[_Iterable[str]] = ..., entities: _Optional[_Iterable[_Union[EntityKey, _Mapping]]] = ...) -> None: ...

class FeatureVector(_message.Message):
    __slots__ = ("values", "statuses")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[FeatureValue]
    statuses: _containers.RepeatedScalarFieldContainer[FeatureStatus]
    def __init__(self, values: _Optional[_Iterable[_Union[FeatureValue, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[FeatureStatus, str]]] = ...) -> None: ...

class GetOnlineFeaturesResponse(_message.Message):
    __slots__ = ("features", "results")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    results: _containers.RepeatedCompositeFieldContainer[FeatureVector]
    def __init__(self, features: _Optional[_Iterable[str]] = ..., results: _Optional[_Iterable[_Union[FeatureVector, _Mapping]]] = ...) -> None: ...

class LoadFileRequest(_message.Message):
    __slots__ = ("view", "url", "default_event_time", "ignore_unknown_columns")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    IGNORE_UNKNOWN_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    view: str
    url: str
    default_event_time: _timestamp_pb2.Timestamp
    ignore_unknown_columns: bool
    def __init__(self, view: _Optional[str] = ..., url: _Optional[str] = ..., default_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ignore_unknown_columns: _Optional[bool] = ...) -> None: ...

class LoadChunk(_message.Message):
    __slots__ = ("request", "data")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    request: LoadFileRequest
    data: bytes
    def __init__(self, request: _Optional[_Union[LoadFileRequest, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class LoadProgress(_message.Message):
    __slots__ = ("rows", "bytes", "done", "written", "ignored_older")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    IGNORED_OLDER_FIELD_NUMBER: _ClassVar[int]
    rows: int
    bytes: int
    done: bool
    written: int
    ignored_older: int
    def __init__(self, rows: _Optional[int] = ..., bytes: _Optional[int] = ..., done: _Optional[bool] = ..., written: _Optional[int] = ..., ignored_older: _Optional[int] = ...) -> None: ...

class LoadFileResponse(_message.Message):
    __slots__ = ("rows", "written", "ignored_older")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    IGNORED_OLDER_FIELD_NUMBER: _ClassVar[int]
    rows: int
    written: int
    ignored_older: int
    def __init__(self, rows: _Optional[int] = ..., written: _Optional[int] = ..., ignored_older: _Optional[int] = ...) -> None: ...

class EntityRow(_message.Message):
    __slots__ = ("values", "timestamp")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, values: _Optional[_Iterable[str]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetHistoricalFeaturesRequest(_message.Message):
    __slots__ = ("features", "entity_rows")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ROWS_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    entity_rows: _containers.RepeatedCompositeFieldContainer[EntityRow]
    def __init__(self, features: _Optional[_Iterable[str]] = ..., entity_rows: _Optional[_Iterable[_Union[EntityRow, _Mapping]]] = ...) -> None: ...

class GetHistoricalFeaturesResponse(_message.Message):
    __slots__ = ("features", "first_row", "results")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    first_row: int
    results: _containers.RepeatedCompositeFieldContainer[FeatureVector]
    def __init__(self, features: _Optional[_Iterable[str]] = ..., first_row: _Optional[int] = ..., results: _Optional[_Iterable[_Union[FeatureVector, _Mapping]]] = ...) -> None: ...
