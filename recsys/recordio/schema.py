"""SageMaker's `aialgs.data.Record` schema as data, and message classes built from it at run time.

Why: the SDK's `record_pb2` is gone from SageMaker SDK v3, and a protoc step or a generated file would be
one more thing to keep in step. The schema is small and frozen (field numbers are the format), so it lives
here as a table and becomes a `FileDescriptorProto` in a private descriptor pool on first use.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "aialgs.data"

_F = descriptor_pb2.FieldDescriptorProto
_REPEATED_PACKED = "repeated"
_OPTIONAL = "optional"
_MAP = "map"

# message name -> fields (name, number, type, label); `type` is a scalar type name or a message name.
# Field numbers and types follow `record.proto` of the SageMaker SDK v2 (proto2, packed repeated fields).
SCHEMA: dict[str, tuple[tuple[str, int, str, str], ...]] = {
    "Float32Tensor": (
        ("values", 1, "float", _REPEATED_PACKED),
        ("keys", 2, "uint64", _REPEATED_PACKED),
        ("shape", 3, "uint64", _REPEATED_PACKED),
    ),
    "Float64Tensor": (
        ("values", 1, "double", _REPEATED_PACKED),
        ("keys", 2, "uint64", _REPEATED_PACKED),
        ("shape", 3, "uint64", _REPEATED_PACKED),
    ),
    "Int32Tensor": (
        ("values", 1, "int32", _REPEATED_PACKED),
        ("keys", 2, "uint64", _REPEATED_PACKED),
        ("shape", 3, "uint64", _REPEATED_PACKED),
    ),
    "Bytes": (
        ("value", 1, "bytes", "repeated"),
        ("content_type", 2, "string", _OPTIONAL),
    ),
    # All fields of Value belong to the oneof `value`.
    "Value": (
        ("float32_tensor", 2, "Float32Tensor", _OPTIONAL),
        ("float64_tensor", 3, "Float64Tensor", _OPTIONAL),
        ("int32_tensor", 7, "Int32Tensor", _OPTIONAL),
        ("bytes", 9, "Bytes", _OPTIONAL),
    ),
    "Record": (
        ("features", 1, "Value", _MAP),
        ("label", 2, "Value", _MAP),
        ("uid", 3, "string", _OPTIONAL),
        ("metadata", 4, "string", _OPTIONAL),
        ("configuration", 5, "string", _OPTIONAL),
    ),
}
ONEOFS = {"Value": "value"}

_SCALARS = {
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "int32": _F.TYPE_INT32,
    "uint64": _F.TYPE_UINT64,
    "bytes": _F.TYPE_BYTES,
    "string": _F.TYPE_STRING,
}


def _set_type(field: Any, type_name: str) -> None:
    if type_name in _SCALARS:
        field.type = _SCALARS[type_name]
    else:
        field.type = _F.TYPE_MESSAGE
        field.type_name = f".{PACKAGE}.{type_name}"


def file_descriptor() -> Any:
    """The schema as a `FileDescriptorProto` (proto2, as `record.proto`)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="aialgs/data/record.proto", package=PACKAGE, syntax="proto2"
    )
    for name, fields in SCHEMA.items():
        message = proto.message_type.add(name=name)
        oneof = ONEOFS.get(name)
        if oneof is not None:
            message.oneof_decl.add(name=oneof)
        for field_name, number, type_name, kind in fields:
            field = message.field.add(name=field_name, number=number)
            if kind == _MAP:
                # map<string, V> is sugar for a repeated nested `<Name>Entry {key = 1; value = 2}`.
                entry_name = "".join(part.capitalize() for part in field_name.split("_")) + "Entry"
                entry = message.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                key = entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL)
                _set_type(key, "string")
                value = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
                _set_type(value, type_name)
                field.label = _F.LABEL_REPEATED
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{name}.{entry_name}"
                continue
            _set_type(field, type_name)
            if kind == _OPTIONAL:
                field.label = _F.LABEL_OPTIONAL
                if oneof is not None:
                    field.oneof_index = 0
            else:
                field.label = _F.LABEL_REPEATED
                if kind == _REPEATED_PACKED:
                    field.options.packed = True
    return proto


@cache
def _classes() -> dict[str, type[Any]]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in SCHEMA
    }


def message_class(name: str) -> type[Any]:
    """The message class `aialgs.data.<name>` (e.g. "Record"), built once per process."""
    return _classes()[name]


def record_class() -> type[Any]:
    """The `Record` message class: the unit of SageMaker's recordIO-protobuf."""
    return _classes()["Record"]
