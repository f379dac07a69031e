from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SeriesId(_message.Message):
    __slots__ = ("sku_id", "location_id")
    SKU_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    sku_id: str
    location_id: str
    def __init__(self, sku_id: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class History(_message.Message):
    __slots__ = ("values", "last_date")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    last_date: str
    def __init__(self, values: _Optional[_Iterable[float]] = ..., last_date: _Optional[str] = ...) -> None: ...

class ForecastRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "series", "horizon_days", "quantiles", "history")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    series: SeriesId
    horizon_days: int
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    history: History
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., series: _Optional[_Union[SeriesId, _Mapping]] = ..., horizon_days: _Optional[int] = ..., quantiles: _Optional[_Iterable[float]] = ..., history: _Optional[_Union[History, _Mapping]] = ...) -> None: ...

class ForecastPoint(_message.Message):
    __slots__ = ("date", "mean", "quantiles")
    DATE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    date: str
    mean: float
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, date: _Optional[str] = ..., mean: _Optional[float] = ..., quantiles: _Optional[_Iterable[float]] = ...) -> None: ...

class ForecastResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "series", "quantiles", "history_last_date", "points")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    series: SeriesId
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    history_last_date: str
    points: _containers.RepeatedCompositeFieldContainer[ForecastPoint]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., series: _Optional[_Union[SeriesId, _Mapping]] = ..., quantiles: _Optional[_Iterable[float]] = ..., history_last_date: _Optional[str] = ..., points: _Optional[_Iterable[_Union[ForecastPoint, _Mapping]]] = ...) -> None: ...

class ForecastBatchRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "series", "horizon_days", "quantiles")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    series: _containers.RepeatedCompositeFieldContainer[SeriesId]
    horizon_days: int
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., series: _Optional[_Iterable[_Union[SeriesId, _Mapping]]] = ..., horizon_days: _Optional[int] = ..., quantiles: _Optional[_Iterable[float]] = ...) -> None: ...

class SeriesForecast(_message.Message):
    __slots__ = ("series", "code", "error", "history_last_date", "points")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    series: SeriesId
    code: int
    error: str
    history_last_date: str
    points: _containers.RepeatedCompositeFieldContainer[ForecastPoint]
    def __init__(self, series: _Optional[_Union[SeriesId, _Mapping]] = ..., code: _Optional[int] = ..., error: _Optional[str] = ..., history_last_date: _Optional[str] = ..., points: _Optional[_Iterable[_Union[ForecastPoint, _Mapping]]] = ...) -> None: ...

class ForecastBatchResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "quantiles", "forecasts")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    FORECASTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    forecasts: _containers.RepeatedCompositeFieldContainer[SeriesForecast]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., quantiles: _Optional[_Iterable[float]] = ..., forecasts: _Optional[_Iterable[_Union[SeriesForecast, _Mapping]]] = ...) -> None: ...
