from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "customer_ids")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "scores")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    scores: _containers.RepeatedCompositeFieldContainer[CustomerScore]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[CustomerScore, _Mapping]]] = ...) -> None: ...

class CustomerScore(_message.Message):
    __slots__ = ("customer_id", "status", "probability", "risk_band", "missing_features", "expired_features", "model_version")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[CustomerScore.Status]
        SCORED: _ClassVar[CustomerScore.Status]
        NO_FEATURES: _ClassVar[CustomerScore.Status]
    STATUS_UNSPECIFIED: CustomerScore.Status
    SCORED: CustomerScore.Status
    NO_FEATURES: CustomerScore.Status
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RISK_BAND_FIELD_NUMBER: _ClassVar[int]
    MISSING_FEATURES_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    status: CustomerScore.Status
    probability: float
    risk_band: str
    missing_features: _containers.RepeatedScalarFieldContainer[str]
    expired_features: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    def __init__(self, customer_id: _Optional[str] = ..., status: _Optional[_Union[CustomerScore.Status, str]] = ..., probability: _Optional[float] = ..., risk_band: _Optional[str] = ..., missing_features: _Optional[_Iterable[str]] = ..., expired_features: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ...) -> None: ...
