"""A thin client over Mercator's typed gRPC APIs: churn scores by customer id, demand
forecasts by series, replenishment orders, chatbot intents by text, the feature store
(`client.features`: pushes and training sets), the registry (`client.registry`:
register, list, promote, roll back), outcomes for live quality (`push_outcomes`) and the
quality itself (`quality`). Each call returns plain dataclasses; a server error
raises a `MercatorError` subclass (`mercator.errors`) with the gRPC code and the server's
message (which names the field at fault). For the V2 protocol, use any V2 client
(tritonclient, KServe's); the generated stubs are in `mercator.v1` for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Tuple, Union

import grpc

from mercator.v1 import (
    churn_pb2,
    churn_pb2_grpc,
    feature_store_pb2_grpc,
    forecasting_pb2,
    forecasting_pb2_grpc,
    intent_pb2,
    intent_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    monitoring_pb2,
    monitoring_pb2_grpc,
    outcomes_pb2,
    outcomes_pb2_grpc,
    registry_pb2_grpc,
)

from .errors import InvalidArgument, MercatorError, call  # noqa: F401 - MercatorError re-exported
from .features import Features, PushResult  # noqa: F401 - PushResult re-exported
from .registry import Registry


@dataclass
class Reason:
    """One feature's share of a customer's churn log-odds."""

    feature: str
    value: float
    # "PRESENT", or "MISSING" / "EXPIRED" when the manifest's default (or NaN) was used.
    source: str
    contribution: float
    raises_risk: bool


@dataclass
class Score:
    """One customer's churn score, its reasons when asked, and the runbook's action."""

    customer_id: str
    scored: bool
    probability: Optional[float]
    risk_band: str
    missing_features: list = field(default_factory=list)
    expired_features: list = field(default_factory=list)
    model_version: str = ""
    reasons: list = field(default_factory=list)
    # The runbook's recommendation and the rule that chose it, if any.
    action: Optional[str] = None
    rule: Optional[str] = None
    # In the rule's control group: `action` is what would have been done; do nothing.
    control: bool = False
    # The rule's experiment ("" when it holds out no one).
    experiment: str = ""
    # How much the action raises the favourable outcome's probability (for churn: the
    # fall in churn), from the runbook's uplift model; None without one.
    uplift: Optional[float] = None


@dataclass
class Intent:
    intent: str
    probability: float


@dataclass
class Classification:
    intents: list
    action: str
    handoff: bool
    handoff_reason: str
    model_version: str
    # The declared slots the message holds (name, value, text, start, end), and those the
    # top intent still needs.
    slots: list = field(default_factory=list)
    missing_slots: list = field(default_factory=list)
    # The turn of the session's conversation (0 without a session_id).
    turn: int = 0
    # Knowledge-base passages that answer the message (id, title, text, url, score).
    answers: list = field(default_factory=list)


@dataclass
class ForecastPoint:
    date: str
    mean: float
    quantiles: list


@dataclass
class Forecast:
    sku_id: str
    location_id: str
    quantiles: list
    history_last_date: str
    points: list
    model_version: str


@dataclass
class Recommendation:
    """A replenishment order and the numbers behind it."""

    outcome: str  # "ORDER", "NO_ORDER" or "NEEDS_APPROVAL"
    order_quantity: float
    reorder_point: float
    order_up_to: float
    inventory_position: float
    protection_days: float
    demand_mean: float
    demand_std: float
    stockout_probability: float
    expected_units_short: float
    order_value: Optional[float]
    needs_approval: bool
    history_last_date: str
    model_version: str


Series = Union[Tuple[str, str], Mapping[str, str]]


class Client:
    """A Mercator server's typed APIs over gRPC.

    `target` is HOST:PORT of the gRPC listener; `token` an API key or JWT (sent as
    `authorization: Bearer …`); `credentials` a `grpc.ssl_channel_credentials(...)` for
    TLS; `timeout` seconds per call.
    """

    def __init__(self, target: str = "127.0.0.1:8001", token: Optional[str] = None,
                 credentials: Optional[grpc.ChannelCredentials] = None, timeout: float = 30.0):
        self._channel = (grpc.secure_channel(target, credentials) if credentials
                         else grpc.insecure_channel(target))
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._churn = churn_pb2_grpc.ChurnStub(self._channel)
        self._intent = intent_pb2_grpc.IntentStub(self._channel)
        self._forecasting = forecasting_pb2_grpc.ForecastingStub(self._channel)
        self._inventory = inventory_pb2_grpc.InventoryStub(self._channel)
        self.features = Features(feature_store_pb2_grpc.FeatureStoreStub(self._channel),
                                 self._metadata, timeout)
        self.registry = Registry(registry_pb2_grpc.RegistryStub(self._channel), self._metadata, timeout)
        self._outcomes = outcomes_pb2_grpc.OutcomesStub(self._channel)
        self._monitoring = monitoring_pb2_grpc.MonitoringStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def score(self, customer_ids: Sequence[str], model: str = "churn", version: str = "",
              top_reasons: int = 0) -> list:
        """Churn scores, in the order of `customer_ids`; the server reads their features.
        `top_reasons` asks for each score's largest contributions to the log-odds."""
        request = churn_pb2.ScoreRequest(model_name=model, model_version=version,
                                         customer_ids=list(customer_ids), top_reasons=top_reasons)
        r = call(self._churn.Score, request, self._metadata, self._timeout)
        scored = churn_pb2.CustomerScore.Status.SCORED
        raises = churn_pb2.Reason.Direction.RAISES_RISK
        return [Score(customer_id=s.customer_id, scored=s.status == scored,
                      probability=s.probability if s.status == scored else None,
                      risk_band=s.risk_band, missing_features=list(s.missing_features),
                      expired_features=list(s.expired_features), model_version=s.model_version,
                      reasons=[Reason(feature=x.feature, value=x.value,
                                      source=churn_pb2.Reason.Source.Name(x.source),
                                      contribution=x.contribution,
                                      raises_risk=x.direction == raises) for x in s.reasons],
                      action=s.intervention.action if s.HasField("intervention") else None,
                      rule=s.intervention.rule if s.HasField("intervention") else None,
                      control=s.intervention.control if s.HasField("intervention") else False,
                      experiment=s.intervention.experiment if s.HasField("intervention") else "",
                      uplift=s.uplift if s.HasField("uplift") else None)
                for s in r.scores]

    def classify(self, text: str, model: str = "intent", version: str = "", top_k: int = 0,
                 session_id: str = "", reference_date: str = "", answer_top_k: int = 0) -> Classification:
        """The intents of a customer's message, most likely first, what to do, and the
        details found (relative dates read from `reference_date`, YYYY-MM-DD)."""
        request = intent_pb2.ClassifyRequest(model_name=model, model_version=version,
                                             text=text.encode("utf-8"), top_k=top_k,
                                             session_id=session_id, reference_date=reference_date,
                                             answer_top_k=answer_top_k)
        r = call(self._intent.Classify, request, self._metadata, self._timeout)
        return Classification(intents=[Intent(i.intent, i.probability) for i in r.intents],
                              action=r.action, handoff=r.handoff, handoff_reason=r.handoff_reason,
                              model_version=r.model_version,
                              slots=[(s.name, s.value, s.text, s.start, s.end) for s in r.slots],
                              missing_slots=list(r.missing_slots), turn=r.turn,
                              answers=[(a.id, a.title, a.text, a.url, a.score) for a in r.answers])

    def forecast(self, series: Series, horizon: int, model: str = "demand", version: str = "",
                 quantiles: Sequence[float] = (), history: Optional[Sequence[float]] = None,
                 last_date: Optional[str] = None) -> Forecast:
        """A demand forecast for `series` — (sku_id, location_id) or a mapping with those
        keys — `horizon` days ahead. The server reads the recent sales from its feature
        store, or takes `history` (daily values, oldest first, ending on `last_date`)."""
        if isinstance(series, Mapping):
            sku, location = series["sku_id"], series.get("location_id", "")
        else:
            sku, location = series
        request = forecasting_pb2.ForecastRequest(
            model_name=model, model_version=version,
            series=forecasting_pb2.SeriesId(sku_id=sku, location_id=location),
            horizon_days=horizon, quantiles=list(quantiles))
        if history is not None:
            if last_date is None:
                raise InvalidArgument("last_date: an inline history needs its last_date")
            request.history.CopyFrom(forecasting_pb2.History(values=[float(v) for v in history],
                                                             last_date=last_date))
        r = call(self._forecasting.Forecast, request, self._metadata, self._timeout)
        return Forecast(sku_id=r.series.sku_id, location_id=r.series.location_id,
                        quantiles=list(r.quantiles), history_last_date=r.history_last_date,
                        points=[ForecastPoint(p.date, p.mean, list(p.quantiles)) for p in r.points],
                        model_version=r.model_version)

    def recommend(self, series: Series, lead_time_days: float, service_level: Optional[float] = None,
                  fill_rate: Optional[float] = None, on_hand: float = 0.0, backordered: float = 0.0,
                  on_order: Sequence[tuple] = (), review_period_days: int = 0,
                  lead_time_std_days: float = 0.0, pack_size: Optional[float] = None,
                  min_order_quantity: float = 0.0, unit_cost: Optional[float] = None,
                  model: str = "demand", version: str = "") -> Recommendation:
        """How much to order today for `series` (as for `forecast`) to reach a cycle
        `service_level` or a `fill_rate`; `on_order` holds (quantity, "YYYY-MM-DD")
        pairs, `backordered` the units owed to customers. The server reads the sales and forecasts demand over the lead time and
        review period."""
        if (service_level is None) == (fill_rate is None):
            raise InvalidArgument("service_level, fill_rate: give one of them")
        if isinstance(series, Mapping):
            sku, location = series["sku_id"], series.get("location_id", "")
        else:
            sku, location = series
        request = inventory_pb2.RecommendRequest(
            model_name=model, model_version=version,
            series=forecasting_pb2.SeriesId(sku_id=sku, location_id=location),
            on_hand=on_hand, backordered=backordered, lead_time_days=lead_time_days, lead_time_std_days=lead_time_std_days,
            review_period_days=review_period_days, min_order_quantity=min_order_quantity,
            on_order=[inventory_pb2.OnOrder(quantity=q, arrival_date=d) for q, d in on_order])
        if service_level is not None:
            request.cycle_service_level = service_level
        else:
            request.fill_rate = fill_rate
        if pack_size is not None:
            request.pack_size = pack_size
        if unit_cost is not None:
            request.unit_cost = unit_cost
        r = call(self._inventory.Recommend, request, self._metadata, self._timeout)
        return Recommendation(
            outcome=inventory_pb2.RecommendResponse.Outcome.Name(r.outcome),
            order_quantity=r.order_quantity, reorder_point=r.reorder_point,
            order_up_to=r.order_up_to, inventory_position=r.inventory_position,
            protection_days=r.protection_days, demand_mean=r.demand_mean, demand_std=r.demand_std,
            stockout_probability=r.stockout_probability,
            expected_units_short=r.expected_units_short,
            order_value=r.order_value if r.HasField("order_value") else None,
            needs_approval=r.needs_approval, history_last_date=r.history_last_date,
            model_version=r.model_version)

    def push_outcomes(self, model: str, outcomes) -> int:
        """Ground truth for live quality: `outcomes` are (entity, time, value) triples
        (`time` a timezone-aware datetime or seconds since the epoch; `value` 1/0, an
        actual, or a str label for a classifier), or a pandas DataFrame with the columns
        `entity`, `time`, `value`. Idempotent on (entity, time). Returns how many were
        written."""
        import datetime as _dt
        if hasattr(outcomes, "itertuples"):
            outcomes = [(r.entity, r.time, r.value) for r in outcomes.itertuples(index=False)]
        request = outcomes_pb2.PushOutcomesRequest(model_name=model)
        for i, (entity, time, value) in enumerate(outcomes):
            o = request.outcomes.add(entity=str(entity))
            if isinstance(time, _dt.datetime):
                if time.tzinfo is None:
                    raise InvalidArgument(f"outcomes[{i}].time: give a timezone-aware datetime")
                o.time.FromDatetime(time.astimezone(_dt.timezone.utc))
            elif hasattr(time, "to_pydatetime"):
                o.time.FromDatetime(time.to_pydatetime().astimezone(_dt.timezone.utc))
            else:
                seconds = float(time)
                o.time.seconds, o.time.nanos = int(seconds // 1), int(round(seconds % 1 * 1e9)) % 1_000_000_000
            if isinstance(value, str):
                o.label = value
            else:
                o.value = float(value)
        return call(self._outcomes.Push, request, self._metadata, self._timeout).accepted

    def quality(self, model: str, window_days: float = 0.0) -> list:
        """Live quality of `model` per version and route, judged now over the last
        `window_days` (0: the server's `prediction_log.quality_window_days`)."""
        request = monitoring_pb2.GetQualityRequest(model_name=model, window_days=window_days)
        r = call(self._monitoring.GetQuality, request, self._metadata, self._timeout)
        return [VersionQuality(version=v.model_version, route=v.route, judged=v.judged,
                               pending=v.pending, metrics=dict(v.metrics),
                               calibration=[(b.mean_predicted, b.observed, b.count)
                                            for b in v.calibration],
                               days=[(d.date, d.judged, dict(d.metrics)) for d in v.days])
                for v in r.versions]
