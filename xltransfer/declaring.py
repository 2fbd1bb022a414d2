"""The building blocks of a declaration: typed values whose one description both validates and writes
JSON Schema, and errors in the words of the file they came from.

``Bounded`` (a number within bounds, a sentinel allowed as itself), ``Choice`` (a string among
choices, with a close one named), ``OneOrMany`` (a list where one value stands for a list of one,
optionally a set), ``Declared`` (a mapping whose unknown key is named with a close known one), and
``path_of``/``message_of``, which turn a pydantic error into a field path and a sentence. Imports
nothing of the harness: options.py and grid_spec.py build on it.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError, core_schema

# -- values -----------------------------------------------------------------------------------------


class Bounded:
    """``value`` within bounds (``gt``/``ge``/``lt``/``le``: JSON Schema's exclusiveMinimum, minimum,
    exclusiveMaximum, maximum); ``sentinel`` passes as itself (0: "the preset's size", -1: "the
    preset's dropout"). Used as ``Annotated[int, Strict(), Bounded(gt=0)]``."""

    _KEYWORDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}

    def __init__(self, *, gt=None, ge=None, lt=None, le=None, sentinel: Any = None, what: str = ""):
        self.bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
        self.sentinel = sentinel
        self.what = what

    def rule(self) -> str:
        b = self.bounds
        if "ge" in b and "le" in b:
            return f"from {b['ge']} to {b['le']}"
        parts = []
        if b.get("gt") == 0:
            parts.append("positive")
        elif "gt" in b:
            parts.append(f"above {b['gt']}")
        if "ge" in b:
            parts.append(f"at least {b['ge']}")
        if "lt" in b:
            parts.append(f"below {b['lt']}")
        if "le" in b:
            parts.append(f"at most {b['le']}")
        return " and ".join(parts)

    def holds(self, value: float) -> bool:
        b = self.bounds
        return (
            ("gt" not in b or value > b["gt"])
            and ("ge" not in b or value >= b["ge"])
            and ("lt" not in b or value < b["lt"])
            and ("le" not in b or value <= b["le"])
        )

    def check(self, value: Any) -> Any:
        if self.sentinel is not None and value == self.sentinel:
            return value
        if not self.holds(value):
            template = "{value} is not {what}: must be {rule}" if self.what else "{value} must be {rule}"
            raise PydanticCustomError(
                "bounds", template, {"value": value, "what": self.what, "rule": self.rule()}
            )
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler) -> dict[str, Any]:
        json_schema = dict(handler(schema))
        json_schema.update({self._KEYWORDS[k]: v for k, v in self.bounds.items()})
        if self.sentinel is not None:  # allowed as itself
            return {"anyOf": [{"const": self.sentinel}, json_schema]}
        return json_schema


Int = Annotated[int, Strict()]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]  # an int is taken too, a bool never
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Positive = Annotated[int, Strict(), Bounded(gt=0)]
PositiveNumber = Annotated[float, Strict(), Field(allow_inf_nan=False), Bounded(gt=0)]
NonNegative = Annotated[int, Strict(), Bounded(ge=0)]
Fraction = Annotated[float, Strict(), Field(allow_inf_nan=False), Bounded(ge=0, le=1)]


def close_name(value: str, known) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class Choice:
    """A string among ``choices`` (``Annotated[str, Choice("setting", SETTINGS)]``): an error names
    the value, the choices and a close one; its JSON Schema is an ``enum``."""

    def __init__(self, what: str, choices: tuple[str, ...] = (), explain: str = ""):
        self.what = what
        self.choices = choices
        self.explain = explain

    def options(self) -> tuple[str, ...]:
        return self.choices

    def check(self, value: Any) -> str:
        known = self.options()
        if not isinstance(value, str):
            raise PydanticCustomError("choice_type", "must be one of {known}", {"known": ", ".join(known)})
        if value not in known:
            raise PydanticCustomError(
                "choice",
                "unknown {what} '{value}' (choose {known}{explain}){hint}",
                {
                    "what": self.what,
                    "value": value,
                    "known": ", ".join(known),
                    "explain": f": {self.explain}" if self.explain else "",
                    "hint": close_name(value, known),
                },
            )
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(self, schema, handler) -> dict[str, Any]:
        return {"enum": list(self.options())}


class OneOrMany:
    """A list, where a single value stands for a list of one; ``unique``: a set (a repeated seed,
    language or task would evaluate the same cells twice); ``min_items``: at least so many."""

    def __init__(self, unique: bool = True, min_items: int = 1):
        self.unique = unique
        self.min_items = min_items

    def _listify(self, value: Any) -> Any:
        return value if isinstance(value, list) else [value]

    def _check(self, values: list) -> list:
        if len(values) < self.min_items:
            raise PydanticCustomError(
                "empty", "must not be empty" if self.min_items == 1 else "too few items"
            )
        if self.unique:
            first: dict[Any, int] = {}
            for i, value in enumerate(values):
                if value in first:
                    raise PydanticCustomError(
                        "repeated",
                        "{value!r} is listed twice (also [{first}])",
                        {"value": value, "first": first[value], "at": f"[{i}]"},
                    )
                first[value] = i
        return values

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        schema = core_schema.no_info_before_validator_function(self._listify, handler(source))
        return core_schema.no_info_after_validator_function(self._check, schema)

    def __get_pydantic_json_schema__(self, schema, handler) -> dict[str, Any]:
        return one_or_many_schema(handler(schema)["items"], self.unique, self.min_items)


def one_or_many_schema(item: dict[str, Any], unique: bool = True, min_items: int = 1) -> dict[str, Any]:
    array: dict[str, Any] = {"type": "array", "items": item}
    if min_items:
        array["minItems"] = min_items
    if unique:
        array["uniqueItems"] = True
    return {"anyOf": [item, array]}


# -- mappings ---------------------------------------------------------------------------------------


class Declared(BaseModel):
    """A mapping of the grid: its keys are its fields; an unknown key is an error naming the key,
    the known ones and a close one."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        return refuse_unknown(data, tuple(cls.model_fields), "field") if isinstance(data, dict) else data


def refuse_unknown(data: dict, known: tuple[str, ...], what: str) -> dict:
    for key in data:
        if key not in known:
            raise PydanticCustomError(
                "unknown_key",
                "unknown {what} (known: {known}){hint}",
                {
                    "what": what,
                    "known": ", ".join(known),
                    "hint": close_name(str(key), known),
                    "at": f".{key}",
                },
            )
    return data


class OptionKeys:
    def __init__(self, config_class: type):
        self.names = tuple(f.name for f in dataclasses.fields(config_class))

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            lambda data: refuse_unknown(data, self.names, "option") if isinstance(data, dict) else data,
            handler(source),
        )


# -- errors and schemas -----------------------------------------------------------------------------


def path_of(error: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """A pydantic error's location as a dotted field path: ``methods[1].params.batch_size``. Left
    out: union tags (written ``<like this>``), the ``[key]`` marker of an error in a mapping's key,
    validator wrappers, and the untagged union members named in ``skip``."""
    path = ""
    skip = (*skip, "[key]")
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in skip or part.startswith(("<", "function-", "json-or-python")):
            continue
        else:
            path += f".{part}"
    return path + (error.get("ctx") or {}).get("at", "")


_KINDS = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "dataclass_exact_type": "a mapping",
}


def message_of(error: dict[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind in _KINDS:
        if isinstance(value, bool) and kind in ("int_type", "float_type"):
            return f"must be {_KINDS[kind]}, not a boolean"
        return f"must be {_KINDS[kind]}, got {type(value).__name__} {value!r}"
    if kind in ("missing", "missing_argument"):
        return "is required"
    if kind == "unexpected_keyword_argument":
        return "unknown option"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"unknown value {value!r} (choose {expected})"
    if kind == "finite_number":
        return f"{value!r} is not a finite number"
    if kind == "too_short":
        return "must not be empty"
    if kind == "string_too_short":
        return f"{value!r} is too short"
    message = error["msg"]
    return message.removeprefix("Value error, ")


class SchemaGenerator(GenerateJsonSchema):
    """Draft 2020-12 without the titles pydantic derives from names (the descriptions say more)."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def generate(self, schema, mode="validation"):
        out = super().generate(schema, mode)
        _drop_titles(out)
        return out


def _drop_titles(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("title"), str):
            del node["title"]
        for value in node.values():
            _drop_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_titles(value)
