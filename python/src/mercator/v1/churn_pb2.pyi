from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "customer_ids", "top_reasons")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    TOP_REASONS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    top_reasons: int
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., customer_ids: _Optional[_Iterable[str]] = ..., top_reasons: _Optional[int] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("feature", "value", "source", "contribution", "direction")
    class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DIRECTION_UNSPECIFIED: _ClassVar[Reason.Direction]
        RAISES_RISK: _ClassVar[Reason.Direction]
        LOWERS_RISK: _ClassVar[Reason.Direction]
    DIRECTION_UNSPECIFIED: Reason.Direction
    RAISES_RISK: Reason.Direction
    LOWERS_RISK: Reason.Direction
    class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SOURCE_UNSPECIFIED: _ClassVar[Reason.Source]
        PRESENT: _ClassVar[Reason.Source]
        MISSING: _ClassVar[Reason.Source]
        EXPIRED: _ClassVar[Reason.Source]
    SOURCE_UNSPECIFIED: Reason.Source
    PRESENT: Reason.Source
    MISSING: Reason.Source
    EXPIRED: Reason.Source
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    source: Reason.Source
    contribution: float
    direction: Reason.Direction
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., source: _Optional[_Union[Reason.Source, str]] = ..., contribution: _Optional[float] = ..., direction: _Optional[_Union[Reason.Direction, str]] = ...) -> None: ...

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
    __slots__ = ("customer_id", "status", "probability", "risk_band", "missing_features", "expired_features", "model_version", "reasons", "intervention", "uplift")
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
    REASONS_FIELD_NUMBER: _ClassVar[int]
    INTERVENTION_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    status: CustomerScore.Status
    probability: float
    risk_band: str
    missing_features: _containers.RepeatedScalarFieldContainer[str]
    expired_features: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    intervention: Intervention
    uplift: float
    def __init__(self, customer_id: _Optional[str] = ..., status: _Optional[_Union[CustomerScore.Status, str]] = ..., probability: _Optional[float] = ..., risk_band: _Optional[str] = ..., missing_features: _Optional[_Iterable[str]] = ..., expired_features: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., intervention: _Optional[_Union[Intervention, _Mapping]] = ..., uplift: _Optional[float] = ...) -> None: ...

class Intervention(_message.Message):
    __slots__ = ("action", "rule", "control", "experiment")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    action: str
    rule: str
    control: bool
    experiment: str
    def __init__(self, action: _Optional[str] = ..., rule: _Optional[str] = ..., control: _Optional[bool] = ..., experiment: _Optional[str] = ...) -> None: ...
