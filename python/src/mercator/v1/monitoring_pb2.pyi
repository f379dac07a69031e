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

class GetQualityRequest(_message.Message):
    __slots__ = ("model_name", "window_days")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    window_days: float
    def __init__(self, model_name: _Optional[str] = ..., window_days: _Optional[float] = ...) -> None: ...

class GetQualityResponse(_message.Message):
    __slots__ = ("model_name", "kind", "window", "evaluated_at", "versions")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    kind: str
    window: str
    evaluated_at: _timestamp_pb2.Timestamp
    versions: _containers.RepeatedCompositeFieldContainer[VersionQuality]
    def __init__(self, model_name: _Optional[str] = ..., kind: _Optional[str] = ..., window: _Optional[str] = ..., evaluated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., versions: _Optional[_Iterable[_Union[VersionQuality, _Mapping]]] = ...) -> None: ...

class VersionQuality(_message.Message):
    __slots__ = ("model_version", "route", "judged", "pending", "metrics", "calibration", "days")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    JUDGED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    route: str
    judged: int
    pending: int
    metrics: _containers.ScalarMap[str, float]
    calibration: _containers.RepeatedCompositeFieldContainer[CalibrationBin]
    days: _containers.RepeatedCompositeFieldContainer[DayQuality]
    def __init__(self, model_version: _Optional[str] = ..., route: _Optional[str] = ..., judged: _Optional[int] = ..., pending: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., calibration: _Optional[_Iterable[_Union[CalibrationBin, _Mapping]]] = ..., days: _Optional[_Iterable[_Union[DayQuality, _Mapping]]] = ...) -> None: ...

class CalibrationBin(_message.Message):
    __slots__ = ("lower", "upper", "count", "mean_predicted", "observed")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_PREDICTED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed: float
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ..., count: _Optional[int] = ..., mean_predicted: _Optional[float] = ..., observed: _Optional[float] = ...) -> None: ...

class DayQuality(_message.Message):
    __slots__ = ("date", "judged", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DATE_FIELD_NUMBER: _ClassVar[int]
    JUDGED_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    date: str
    judged: int
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, date: _Optional[str] = ..., judged: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class GetExperimentsRequest(_message.Message):
    __slots__ = ("model_name", "window_days")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    window_days: float
    def __init__(self, model_name: _Optional[str] = ..., window_days: _Optional[float] = ...) -> None: ...

class GetExperimentsResponse(_message.Message):
    __slots__ = ("model_name", "window", "experiments")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    window: str
    experiments: _containers.RepeatedCompositeFieldContainer[ExperimentReport]
    def __init__(self, model_name: _Optional[str] = ..., window: _Optional[str] = ..., experiments: _Optional[_Iterable[_Union[ExperimentReport, _Mapping]]] = ...) -> None: ...

class ExperimentReport(_message.Message):
    __slots__ = ("experiment", "rule", "action", "treated", "treated_outcomes", "control", "control_outcomes", "pending", "uplift", "lower", "upper", "z", "p_value", "cost", "cost_per_retained", "qini_uplift", "qini_risk")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TREATED_FIELD_NUMBER: _ClassVar[int]
    TREATED_OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    CONTROL_OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_PER_RETAINED_FIELD_NUMBER: _ClassVar[int]
    QINI_UPLIFT_FIELD_NUMBER: _ClassVar[int]
    QINI_RISK_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    rule: str
    action: str
    treated: int
    treated_outcomes: int
    control: int
    control_outcomes: int
    pending: int
    uplift: float
    lower: float
    upper: float
    z: float
    p_value: float
    cost: float
    cost_per_retained: float
    qini_uplift: float
    qini_risk: float
    def __init__(self, experiment: _Optional[str] = ..., rule: _Optional[str] = ..., action: _Optional[str] = ..., treated: _Optional[int] = ..., treated_outcomes: _Optional[int] = ..., control: _Optional[int] = ..., control_outcomes: _Optional[int] = ..., pending: _Optional[int] = ..., uplift: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., z: _Optional[float] = ..., p_value: _Optional[float] = ..., cost: _Optional[float] = ..., cost_per_retained: _Optional[float] = ..., qini_uplift: _Optional[float] = ..., qini_risk: _Optional[float] = ...) -> None: ...
