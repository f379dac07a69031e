from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "text", "session_id", "top_k", "reference_date", "answer_top_k")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DATE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TOP_K_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    text: bytes
    session_id: str
    top_k: int
    reference_date: str
    answer_top_k: int
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., text: _Optional[bytes] = ..., session_id: _Optional[str] = ..., top_k: _Optional[int] = ..., reference_date: _Optional[str] = ..., answer_top_k: _Optional[int] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("id", "title", "text", "url", "score")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    text: str
    url: str
    score: float
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., url: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class Slot(_message.Message):
    __slots__ = ("name", "value", "text", "start", "end", "remembered")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    REMEMBERED_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    text: str
    start: int
    end: int
    remembered: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., text: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., remembered: _Optional[bool] = ...) -> None: ...

class IntentScore(_message.Message):
    __slots__ = ("intent", "probability")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    intent: str
    probability: float
    def __init__(self, intent: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "intents", "action", "handoff", "handoff_reason", "session_id", "slots", "missing_slots", "turn", "answers")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_REASON_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    intents: _containers.RepeatedCompositeFieldContainer[IntentScore]
    action: str
    handoff: bool
    handoff_reason: str
    session_id: str
    slots: _containers.RepeatedCompositeFieldContainer[Slot]
    missing_slots: _containers.RepeatedScalarFieldContainer[str]
    turn: int
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., intents: _Optional[_Iterable[_Union[IntentScore, _Mapping]]] = ..., action: _Optional[str] = ..., handoff: _Optional[bool] = ..., handoff_reason: _Optional[str] = ..., session_id: _Optional[str] = ..., slots: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ..., missing_slots: _Optional[_Iterable[str]] = ..., turn: _Optional[int] = ..., answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ...) -> None: ...
