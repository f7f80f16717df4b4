"""The bedrock-agentcore data-plane model as the pinned botocore ships it, and input validation by it.

The local service reads its routes (HTTP method, URI, success status), its header-bound members,
its error shapes (name -> HTTP status) and every input constraint (required, length, range,
pattern, enum, union) from this model rather than from hand-copied tables, so it answers what the
model says and nothing it does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.loaders import Loader

SERVICE = "bedrock-agentcore"
API_VERSION = "2024-02-28"
OPERATIONS = ("CreatePaymentSession", "GetPaymentSession", "GetPaymentInstrument", "ProcessPayment")


@dataclass(frozen=True)
class Operation:
    """One modelled operation: its route, its shapes and the errors it may answer."""

    name: str
    method: str
    uri: str
    success_status: int
    input_shape: str
    output_shape: str
    errors: frozenset[str]
    # member name -> HTTP header name, for members the model binds to headers
    header_members: Mapping[str, str]


@dataclass(frozen=True)
class FieldError:
    """One failed constraint, named by the member's dotted path as AWS's validators do."""

    path: str
    constraint: str
    cannot_parse: bool = False


@dataclass
class Validation:
    """The input split into its body and header members, and every constraint it failed."""

    params: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


class ServiceModel:
    """The four payment operations of the data-plane model, with a validator for their input."""

    def __init__(self) -> None:
        raw = Loader().load_service_model(SERVICE, "service-2", api_version=API_VERSION)
        if raw["metadata"]["protocol"] != "rest-json":
            raise RuntimeError(f"{SERVICE} model is not rest-json: {raw['metadata']['protocol']}")
        self.shapes: dict[str, Any] = raw["shapes"]
        self.operations: dict[str, Operation] = {}
        for name in OPERATIONS:
            op = raw["operations"][name]
            input_shape = op["input"]["shape"]
            headers = {
                member: spec["locationName"]
                for member, spec in self.shapes[input_shape]["members"].items()
                if spec.get("location") == "header"
            }
            unsupported = [
                member
                for member, spec in self.shapes[input_shape]["members"].items()
                if spec.get("location") not in (None, "header")
            ]
            if unsupported:
                raise RuntimeError(f"{name}: members bound to {unsupported} are not served locally")
            self.operations[name] = Operation(
                name=name,
                method=op["http"]["method"],
                uri=op["http"]["requestUri"],
                success_status=op["http"].get("responseCode", 200),
                input_shape=input_shape,
                output_shape=op["output"]["shape"],
                errors=frozenset(e["shape"] for e in op.get("errors", [])),
                header_members=headers,
            )

    def route(self, method: str, path: str) -> Operation | None:
        """The operation served at this method and path, if any."""
        for op in self.operations.values():
            if op.method == method and op.uri == path:
                return op
        return None

    def error_status(self, error: str) -> int:
        """The HTTP status the model gives an error shape."""
        return int(self.shapes[error]["error"]["httpStatusCode"])

    def enum(self, shape: str) -> list[str]:
        """The values of an enum shape."""
        return list(self.shapes[shape]["enum"])

    def validate(self, op: Operation, body: Any, headers: Mapping[str, str]) -> Validation:
        """Checks a request's body and header members against the operation's input shape.

        Unknown body members are refused (stricter than a server that ignores them, so a caller
        that passes here passes there). Patterns must match the whole value (Smithy patterns are
        unanchored; full match is the stricter reading and the one the ids' fixed lengths imply).
        """
        result = Validation()
        if not isinstance(body, dict):
            result.errors.append(FieldError("", "Request body must be a JSON object", True))
            return result
        shape = self.shapes[op.input_shape]
        members = shape["members"]
        for member, header in op.header_members.items():
            value = headers.get(header.lower())
            if value is not None:
                result.params[member] = value
        for key, value in body.items():
            if key in op.header_members or key not in members:
                result.errors.append(FieldError(key, "Member is not part of the input", True))
            elif value is not None:
                result.params[key] = value
        for required in shape.get("required", []):
            if result.params.get(required) is None:
                result.errors.append(FieldError(required, "Member must not be null"))
        for key, value in result.params.items():
            if key in members:
                self.check(members[key]["shape"], value, key, result.errors)
        return result

    def check(self, shape_name: str, value: Any, path: str, errors: list[FieldError]) -> None:
        """Appends to `errors` every constraint of shape `shape_name` that `value` fails."""
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure" and shape.get("document"):
            return  # a document is any JSON value; its meaning is checked by the operation
        if kind == "structure":
            self._check_structure(shape, value, path, errors)
        elif kind == "string":
            self._check_string(shape, value, path, errors)
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append(FieldError(path, "Member must be an integer", True))
                return
            if "min" in shape and value < shape["min"]:
                errors.append(FieldError(path, f"Member must have value greater than or equal to {shape['min']}"))
            if "max" in shape and value > shape["max"]:
                errors.append(FieldError(path, f"Member must have value less than or equal to {shape['max']}"))
        elif kind == "boolean":
            if not isinstance(value, bool):
                errors.append(FieldError(path, "Member must be a boolean", True))
        elif kind == "list":
            if not isinstance(value, list):
                errors.append(FieldError(path, "Member must be a list", True))
                return
            self._check_length(shape, len(value), path, errors)
            for index, item in enumerate(value):
                if item is None:
                    errors.append(FieldError(f"{path}.{index + 1}", "Member must not be null"))
                else:
                    self.check(shape["member"]["shape"], item, f"{path}.{index + 1}", errors)
        elif kind == "timestamp":
            if not isinstance(value, (int, float, str)) or isinstance(value, bool):
                errors.append(FieldError(path, "Member must be a timestamp", True))
        else:
            raise RuntimeError(f"shape type {kind} ({shape_name}) is not validated locally")

    def _check_structure(self, shape: Any, value: Any, path: str, errors: list[FieldError]) -> None:
        if not isinstance(value, dict):
            errors.append(FieldError(path, "Member must be an object", True))
            return
        members = shape.get("members", {})
        present = {key: item for key, item in value.items() if item is not None}
        for key in present:
            if key not in members:
                errors.append(FieldError(f"{path}.{key}", "Member is not part of the input", True))
        if shape.get("union") and len(present) != 1:
            errors.append(FieldError(path, "Member must have exactly one member of the union set"))
        for required in shape.get("required", []):
            if required not in present:
                errors.append(FieldError(f"{path}.{required}", "Member must not be null"))
        for key, item in present.items():
            if key in members:
                self.check(members[key]["shape"], item, f"{path}.{key}", errors)

    def _check_string(self, shape: Any, value: Any, path: str, errors: list[FieldError]) -> None:
        if not isinstance(value, str):
            errors.append(FieldError(path, "Member must be a string", True))
            return
        if "enum" in shape and value not in shape["enum"]:
            errors.append(FieldError(path, f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]"))
        self._check_length(shape, len(value), path, errors)
        pattern = shape.get("pattern")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            errors.append(FieldError(path, f"Member must satisfy regular expression pattern: {pattern}"))

    @staticmethod
    def _check_length(shape: Any, length: int, path: str, errors: list[FieldError]) -> None:
        if "min" in shape and length < shape["min"]:
            errors.append(FieldError(path, f"Member must have length greater than or equal to {shape['min']}"))
        if "max" in shape and length > shape["max"]:
            errors.append(FieldError(path, f"Member must have length less than or equal to {shape['max']}"))


def validation_message(errors: list[FieldError]) -> str:
    """AWS's summary line: 'N validation error(s) detected: Value at 'x' failed to satisfy ...'.

    Values are never echoed: a payload is modelled sensitive, and a log line must not carry one.
    """
    count = len(errors)
    details = "; ".join(
        f"Value at '{e.path}' failed to satisfy constraint: {e.constraint}" if e.path else e.constraint for e in errors
    )
    return f"{count} validation error{'s' if count != 1 else ''} detected: {details}"
