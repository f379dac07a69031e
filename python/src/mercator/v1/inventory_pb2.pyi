from mercator.v1 import forecasting_pb2 as _forecasting_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OnOrder(_message.Message):
    __slots__ = ("quantity", "arrival_date")
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_DATE_FIELD_NUMBER: _ClassVar[int]
    quantity: float
    arrival_date: str
    def __init__(self, quantity: _Optional[float] = ..., arrival_date: _Optional[str] = ...) -> None: ...

class LeadTimeOutcome(_message.Message):
    __slots__ = ("days", "probability")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    days: int
    probability: float
    def __init__(self, days: _Optional[int] = ..., probability: _Optional[float] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "series", "on_hand", "on_order", "lead_time_days", "lead_time_std_days", "lead_time_distribution", "review_period_days", "cycle_service_level", "fill_rate", "pack_size", "min_order_quantity", "unit_cost", "quantiles", "history", "backordered")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    ON_ORDER_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_DAYS_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_STD_DAYS_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    REVIEW_PERIOD_DAYS_FIELD_NUMBER: _ClassVar[int]
    CYCLE_SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    FILL_RATE_FIELD_NUMBER: _ClassVar[int]
    PACK_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_COST_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    series: _forecasting_pb2.SeriesId
    on_hand: float
    on_order: _containers.RepeatedCompositeFieldContainer[OnOrder]
    lead_time_days: float
    lead_time_std_days: float
    lead_time_distribution: _containers.RepeatedCompositeFieldContainer[LeadTimeOutcome]
    review_period_days: int
    cycle_service_level: float
    fill_rate: float
    pack_size: float
    min_order_quantity: float
    unit_cost: float
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    history: _forecasting_pb2.History
    backordered: float
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., series: _Optional[_Union[_forecasting_pb2.SeriesId, _Mapping]] = ..., on_hand: _Optional[float] = ..., on_order: _Optional[_Iterable[_Union[OnOrder, _Mapping]]] = ..., lead_time_days: _Optional[float] = ..., lead_time_std_days: _Optional[float] = ..., lead_time_distribution: _Optional[_Iterable[_Union[LeadTimeOutcome, _Mapping]]] = ..., review_period_days: _Optional[int] = ..., cycle_service_level: _Optional[float] = ..., fill_rate: _Optional[float] = ..., pack_size: _Optional[float] = ..., min_order_quantity: _Optional[float] = ..., unit_cost: _Optional[float] = ..., quantiles: _Optional[_Iterable[float]] = ..., history: _Optional[_Union[_forecasting_pb2.History, _Mapping]] = ..., backordered: _Optional[float] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "series", "history_last_date", "outcome", "protection_days", "demand_mean", "demand_std", "quantiles", "demand_quantiles", "reorder_point", "order_up_to", "inventory_position", "order_quantity", "stockout_probability", "expected_units_short", "order_value", "needs_approval")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[RecommendResponse.Outcome]
        ORDER: _ClassVar[RecommendResponse.Outcome]
        NO_ORDER: _ClassVar[RecommendResponse.Outcome]
        NEEDS_APPROVAL: _ClassVar[RecommendResponse.Outcome]
    OUTCOME_UNSPECIFIED: RecommendResponse.Outcome
    ORDER: RecommendResponse.Outcome
    NO_ORDER: RecommendResponse.Outcome
    NEEDS_APPROVAL: RecommendResponse.Outcome
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LAST_DATE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    DEMAND_MEAN_FIELD_NUMBER: _ClassVar[int]
    DEMAND_STD_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    DEMAND_QUANTILES_FIELD_NUMBER: _ClassVar[int]
    REORDER_POINT_FIELD_NUMBER: _ClassVar[int]
    ORDER_UP_TO_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_POSITION_FIELD_NUMBER: _ClassVar[int]
    ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STOCKOUT_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_UNITS_SHORT_FIELD_NUMBER: _ClassVar[int]
    ORDER_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    series: _forecasting_pb2.SeriesId
    history_last_date: str
    outcome: RecommendResponse.Outcome
    protection_days: float
    demand_mean: float
    demand_std: float
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    demand_quantiles: _containers.RepeatedScalarFieldContainer[float]
    reorder_point: float
    order_up_to: float
    inventory_position: float
    order_quantity: float
    stockout_probability: float
    expected_units_short: float
    order_value: float
    needs_approval: bool
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., series: _Optional[_Union[_forecasting_pb2.SeriesId, _Mapping]] = ..., history_last_date: _Optional[str] = ..., outcome: _Optional[_Union[RecommendResponse.Outcome, str]] = ..., protection_days: _Optional[float] = ..., demand_mean: _Optional[float] = ..., demand_std: _Optional[float] = ..., quantiles: _Optional[_Iterable[float]] = ..., demand_quantiles: _Optional[_Iterable[float]] = ..., reorder_point: _Optional[float] = ..., order_up_to: _Optional[float] = ..., inventory_position: _Optional[float] = ..., order_quantity: _Optional[float] = ..., stockout_probability: _Optional[float] = ..., expected_units_short: _Optional[float] = ..., order_value: _Optional[float] = ..., needs_approval: _Optional[bool] = ...) -> None: ...

class RecommendBatchRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "items")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    items: _containers.RepeatedCompositeFieldContainer[RecommendRequest]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., items: _Optional[_Iterable[_Union[RecommendRequest, _Mapping]]] = ...) -> None: ...

class ItemRecommendation(_message.Message):
    __slots__ = ("index", "code", "error", "recommendation")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    index: int
    code: int
    error: str
    recommendation: RecommendResponse
    def __init__(self, index: _Optional[int] = ..., code: _Optional[int] = ..., error: _Optional[str] = ..., recommendation: _Optional[_Union[RecommendResponse, _Mapping]] = ...) -> None: ...

class RecommendBatchResponse(_message.Message):
    __slots__ = ("recommendations",)
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[ItemRecommendation]
    def __init__(self, recommendations: _Optional[_Iterable[_Union[ItemRecommendation, _Mapping]]] = ...) -> None: ...
