"""Field checks shared by the vendor modules; each vendor renders the issues in its own error shape.

Three backends are pydantic-based (Runflow and fal speak pydantic v2, ImagePipeline's documented
example is pydantic v1 / FastAPI), so the renderers below produce those two dialects; FASHN turns
the first issue into a ``BadRequest`` message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["str", "int", "float", "bool", "object", "str_list"]
IssueKind = Literal["missing", "type", "ge", "le", "choice", "pattern", "too_long"]

_MISSING = object()


@dataclass(frozen=True)
class FieldSpec:
    """What one input field must look like."""

    type: FieldType
    required: bool = False
    default: Any = None
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    max_length: int | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Issue:
    """One problem with one field, independent of how a vendor words it."""

    loc: tuple[str | int, ...]
    kind: IssueKind
    field_type: FieldType
    input: Any = None
    limit: Any = None


def _type_ok(value: Any, field_type: FieldType) -> bool:
    # bool is an int subclass in Python; JSON backends reject true for an integer.
    if field_type == "str":
        return isinstance(value, str)
    if field_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if field_type == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field_type == "bool":
        return isinstance(value, bool)
    if field_type == "object":
        return isinstance(value, dict)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def check_fields(
    data: Mapping[str, Any], schema: Mapping[str, FieldSpec], loc: Sequence[str | int] = ("body",)
) -> tuple[dict[str, Any], list[Issue]]:
    """Validate ``data`` against ``schema``: values with defaults applied, and the issues found.

    Keys not in the schema are ignored, as the documented backends do.
    """
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for name, spec in schema.items():
        where = (*loc, name)
        value = data.get(name, _MISSING)
        if value is _MISSING or (value is None and not spec.nullable):
            if spec.required:
                issues.append(Issue(where, "missing", spec.type))
            elif spec.default is not None:
                values[name] = spec.default
            continue
        if value is None:
            values[name] = None
            continue
        if not _type_ok(value, spec.type):
            issues.append(Issue(where, "type", spec.type, value))
            continue
        if spec.ge is not None and value < spec.ge:
            issues.append(Issue(where, "ge", spec.type, value, spec.ge))
        elif spec.le is not None and value > spec.le:
            issues.append(Issue(where, "le", spec.type, value, spec.le))
        elif spec.choices is not None and value not in spec.choices:
            issues.append(Issue(where, "choice", spec.type, value, spec.choices))
        elif spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            issues.append(Issue(where, "pattern", spec.type, value, spec.pattern))
        elif spec.max_length is not None and len(value) > spec.max_length:
            issues.append(Issue(where, "too_long", spec.type, value, spec.max_length))
        else:
            values[name] = value
    return values, issues


def _number(limit: Any) -> Any:
    return int(limit) if isinstance(limit, float) and limit.is_integer() else limit


_V2_TYPES: dict[FieldType, tuple[str, str]] = {
    "str": ("string_type", "Input should be a valid string"),
    "int": ("int_type", "Input should be a valid integer"),
    "float": ("float_type", "Input should be a valid number"),
    "bool": ("bool_type", "Input should be a valid boolean"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "str_list": ("list_type", "Input should be a valid list of strings"),
}


def pydantic_v2_error(issue: Issue) -> dict[str, Any]:
    """Issue as a pydantic v2 error item ``{type, loc, msg, input, ctx?}``."""
    item: dict[str, Any] = {"loc": list(issue.loc)}
    if issue.kind == "missing":
        item.update(type="missing", msg="Field required")
    elif issue.kind == "type":
        kind, msg = _V2_TYPES[issue.field_type]
        item.update(type=kind, msg=msg, input=issue.input)
    elif issue.kind in ("ge", "le"):
        words = "greater than or equal to" if issue.kind == "ge" else "less than or equal to"
        limit = _number(issue.limit)
        kind = "greater_than_equal" if issue.kind == "ge" else "less_than_equal"
        item.update(type=kind, msg=f"Input should be {words} {limit}", input=issue.input, ctx={issue.kind: limit})
    elif issue.kind == "choice":
        expected = " or ".join(f"'{choice}'" for choice in issue.limit)
        item.update(
            type="literal_error", msg=f"Input should be {expected}", input=issue.input, ctx={"expected": expected}
        )
    elif issue.kind == "pattern":
        item.update(
            type="string_pattern_mismatch",
            msg=f"String should match pattern '{issue.limit}'",
            input=issue.input,
            ctx={"pattern": issue.limit},
        )
    else:
        item.update(
            type="string_too_long",
            msg=f"String should have at most {issue.limit} characters",
            input=issue.input,
            ctx={"max_length": issue.limit},
        )
    return item


_V1_TYPES: dict[FieldType, tuple[str, str]] = {
    "str": ("type_error.str", "str type expected"),
    "int": ("type_error.integer", "value is not a valid integer"),
    "float": ("type_error.float", "value is not a valid float"),
    "bool": ("type_error.bool", "value could not be parsed to a boolean"),
    "object": ("type_error.dict", "value is not a valid dict"),
    "str_list": ("type_error.list", "value is not a valid list"),
}


def pydantic_v1_error(issue: Issue) -> dict[str, Any]:
    """Issue as a FastAPI/pydantic v1 error item ``{loc, msg, type, ctx?}``."""
    item: dict[str, Any] = {"loc": list(issue.loc)}
    if issue.kind == "missing":
        item.update(msg="field required", type="value_error.missing")
    elif issue.kind == "type":
        kind, msg = _V1_TYPES[issue.field_type]
        item.update(msg=msg, type=kind)
    elif issue.kind in ("ge", "le"):
        words = "greater than or equal to" if issue.kind == "ge" else "less than or equal to"
        limit = _number(issue.limit)
        item.update(
            msg=f"ensure this value is {words} {limit}",
            type=f"value_error.number.not_{issue.kind}",
            ctx={"limit_value": limit},
        )
    elif issue.kind == "choice":
        permitted = ", ".join(f"'{choice}'" for choice in issue.limit)
        item.update(
            msg=f"value is not a valid enumeration member; permitted: {permitted}",
            type="type_error.enum",
            ctx={"enum_values": list(issue.limit)},
        )
    elif issue.kind == "pattern":
        item.update(
            msg=f'string does not match regex "{issue.limit}"',
            type="value_error.str.regex",
            ctx={"pattern": issue.limit},
        )
    else:
        item.update(
            msg=f"ensure this value has at most {issue.limit} characters",
            type="value_error.any_str.max_length",
            ctx={"limit_value": issue.limit},
        )
    return item


def plain_message(issue: Issue) -> str:
    """Issue as one sentence (FASHN's ``BadRequest`` message)."""
    name = ".".join(str(part) for part in issue.loc[1:] or issue.loc)
    if issue.kind == "missing":
        return f"Missing required parameter: {name}"
    if issue.kind == "type":
        return f"Invalid type for {name}: expected {issue.field_type}"
    if issue.kind == "ge":
        return f"{name} must be >= {_number(issue.limit)}"
    if issue.kind == "le":
        return f"{name} must be <= {_number(issue.limit)}"
    if issue.kind == "choice":
        return f"{name} must be one of: {', '.join(issue.limit)}"
    if issue.kind == "pattern":
        return f"{name} has an invalid format"
    return f"{name} is longer than {issue.limit} characters"
