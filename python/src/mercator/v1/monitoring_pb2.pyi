import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDriftRequest(_message.Message):
    __slots__ = ("model_name", "model_version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class GetDriftResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[VersionDrift]
    def __init__(self, versions: _Optional[_Iterable[_Union[VersionDrift, _Mapping]]] = ...) -> None: ...

class VersionDrift(_message.Message):
    __slots__ = ("model_name", "model_version", "profiled", "samples", "evaluated_at", "features", "min_samples")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROFILED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    profiled: bool
    samples: int
    evaluated_at: _timestamp_pb2.Timestamp
    features: _containers.RepeatedCompositeFieldContainer[FeatureDrift]
    min_samples: int
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., profiled: _Optional[bool] = ..., samples: _Optional[int] = ..., evaluated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., features: _Optional[_Iterable[_Union[FeatureDrift, _Mapping]]] = ..., min_samples: _Optional[int] = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("name", "prediction", "samples", "psi", "null_rate_shift", "ks", "js_distance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    NULL_RATE_SHIFT_FIELD_NUMBER: _ClassVar[int]
    KS_FIELD_NUMBER: _ClassVar[int]
    JS_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    prediction: bool
    samples: int
    psi: float
    null_rate_shift: float
    ks: float
    js_distance: float
    def __init__(self, name: _Optional[str] = ..., prediction: _Optional[bool] = ..., samples: _Optional[int] = ..., psi: _Optional[float] = ..., null_rate_shift: _Optional[float] = ..., ks: _Optional[float] = ..., js_distance: _Optional[float] = ...) -> None: ...
