"""The base of the custom wire's models (:class:`Wire`: camelCase on the wire, optional
fields left ``None`` omitted, unknown keys ignored) and the handlers' two conversions,
:func:`parse` and :func:`dump`. The models are in ``wire`` (and ``wire_rewind``)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_serializer
from pydantic.alias_generators import to_camel
from pygls.exceptions import JsonRpcInvalidParams

_OPTIONAL: dict[type, tuple[tuple[str, str], ...]] = {}


def _optional_fields(cls: type["Wire"]) -> tuple[tuple[str, str], ...]:
    found = _OPTIONAL.get(cls)
    if found is None:
        found = tuple((n, f.alias or n) for n, f in cls.model_fields.items() if not f.is_required())
        _OPTIONAL[cls] = found
    return found


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @model_serializer(mode="wrap")
    def _omit_empty_optionals(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name, alias in _optional_fields(type(self)):
                if getattr(self, name) is None:
                    data.pop(alias, None)
                    data.pop(name, None)
        return data


W = TypeVar("W", bound=Wire)


def parse(model: type[W], raw: Any, what: str = "params") -> W:
    """``raw`` (a dict from the client) as ``model``; ``JsonRpcInvalidParams`` saying what is wrong."""
    if raw is None:
        raw = {}
    if hasattr(raw, "_asdict"):
        raw = dict(raw._asdict())
    if not isinstance(raw, dict):
        raise JsonRpcInvalidParams(f"{what} must be an object, not {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise JsonRpcInvalidParams(f"invalid {what}: {describe(e)}") from e


def describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        where = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{where!r}: {err['msg']}")
    return "; ".join(parts)


def dump(model: Wire) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json")
