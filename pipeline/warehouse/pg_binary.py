"""PostgreSQL's binary COPY format, encoded from Arrow columns without a Python loop per row.

A tuple is a 16-bit field count, then per field a 32-bit length (-1 for NULL) and the value in the
column type's binary format, all big-endian. Fixed-width columns without nulls go first, as one
numpy record per row (the field count included); every other column adds its length words and its
values. Arrow's `binary_join_element_wise` interleaves them row by row, and the data buffer of its
result is the tuple stream itself, ready for COPY. COPY names the columns in that order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, no extension
TRAILER = b"\xff\xff"
_EPOCH_DAYS = 10_957  # PostgreSQL counts dates and timestamps from 2000-01-01, Arrow from 1970-01-01
_EPOCH_MICROS = _EPOCH_DAYS * 86_400_000_000

# information_schema data_type -> (Arrow type the values are cast to, big-endian wire dtype).
_FIXED = {
    "smallint": (pa.int16(), ">i2"),
    "integer": (pa.int32(), ">i4"),
    "bigint": (pa.int64(), ">i8"),
    "real": (pa.float32(), ">f4"),
    "double precision": (pa.float64(), ">f8"),
    "boolean": (pa.bool_(), "u1"),
    "date": (pa.date32(), ">i4"),
    "timestamp with time zone": (pa.timestamp("us", tz="UTC"), ">i8"),
    "timestamp without time zone": (pa.timestamp("us"), ">i8"),
}
_TEXT = {"character varying", "text", "character"}
_SEPARATOR = pa.scalar(b"", pa.large_binary())


def supports(data_types: list[str]) -> bool:
    """True when every column type has an encoder here."""
    return all(t in _FIXED or t in _TEXT for t in data_types)


@dataclass(frozen=True)
class RowFormat:
    order: list[int]  # the frame's columns in the order the tuples carry them (and COPY names them)
    types: list[str]  # their information_schema data types, in that order
    packed: int  # the first `packed` are fixed-width with no null: one numpy record per row


def row_format(data_types: list[str], has_nulls: list[bool]) -> RowFormat:
    packed = [i for i, t in enumerate(data_types) if t in _FIXED and not has_nulls[i]]
    rest = [i for i in range(len(data_types)) if i not in packed]
    order = packed + rest
    return RowFormat(order, [data_types[i] for i in order], len(packed))


def encode(table: pa.Table | pl.DataFrame, fmt: RowFormat) -> pa.Buffer:
    """The tuples of `table` (its columns in `fmt.order`) as one buffer of binary COPY data, without
    the signature and the trailer."""
    if isinstance(table, pl.DataFrame):
        # Polars' own string views, without the copy into large_string that the default level makes.
        table = table.to_arrow(compat_level=pl.CompatLevel.newest())
    columns = [_cast(c, name, data_type) for c, name, data_type in zip(table.columns, table.column_names, fmt.types)]
    fields = [_record(columns[:fmt.packed], fmt.types[:fmt.packed], table.num_columns, table.num_rows)]
    for array, data_type in zip(columns[fmt.packed:], fmt.types[fmt.packed:]):
        fields.extend(_text(array) if data_type in _TEXT else _nullable_fixed(array, *_FIXED[data_type]))
    joined = fields[0] if len(fields) == 1 else pc.binary_join_element_wise(*fields, _SEPARATOR)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64, count=len(joined) + 1, offset=joined.offset * 8)
    return joined.buffers()[2][offsets[0]:offsets[-1]]


def _cast(column: pa.ChunkedArray | pa.Array, name: str, data_type: str) -> pa.Array:
    """The column as the Arrow type its wire format is made from. The cast is safe: a value the
    column cannot hold (an Int64 beyond INTEGER, say) fails here, with the column named."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    target = pa.large_binary() if data_type in _TEXT else _FIXED[data_type][0]
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"column {name!r} ({array.type}) cannot be sent as {data_type}: {error}") from None


def _binary(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """A large_binary array over numpy bytes and int64 offsets, without copying them."""
    return pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _fixed_width(records: np.ndarray) -> pa.Array:
    width = records.dtype.itemsize
    return _binary(records.view(np.uint8), np.arange(0, (len(records) + 1) * width, width, dtype=np.int64))


def _record(arrays: list[pa.Array], data_types: list[str], field_count: int, rows: int) -> pa.Array:
    """The field count and every packed field, length word and value, as one fixed-width record.
    The constant words come from a tiled template: assigning a scalar to an unaligned big-endian
    field is numpy's slow path, 3x the cost of the values themselves."""
    layout = [("count", ">i2")]
    for i, data_type in enumerate(data_types):
        layout += [(f"l{i}", ">i4"), (f"v{i}", _FIXED[data_type][1])]
    template = np.zeros(1, dtype=layout)
    template["count"] = field_count
    for i, data_type in enumerate(data_types):
        template[f"l{i}"] = np.dtype(_FIXED[data_type][1]).itemsize
    records = np.tile(template, rows)
    for i, (array, data_type) in enumerate(zip(arrays, data_types)):
        if array.null_count:
            raise ValueError("a packed column holds a null")  # row_format packs null-free columns only
        records[f"v{i}"] = _values(array, *_FIXED[data_type])
    return _fixed_width(records)


def _text(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The length words (-1 for NULL), and the UTF-8 bytes (empty for NULL)."""
    lengths = pc.binary_length(array).fill_null(-1).to_numpy(zero_copy_only=False).astype(">i4")
    return _fixed_width(lengths), array.fill_null(b"") if array.null_count else array


def _nullable_fixed(array: pa.Array, arrow_type: pa.DataType, wire: str) -> tuple[pa.Array, pa.Array]:
    """The length words (-1 for NULL), and the values (empty for NULL)."""
    values = _values(array, arrow_type, wire)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    width = values.dtype.itemsize
    lengths = np.where(valid, np.int32(width), np.int32(-1)).astype(">i4")
    kept = values[valid]
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.where(valid, width, 0), out=offsets[1:])
    return _fixed_width(lengths), _binary(kept.view(np.uint8), offsets)


def _values(array: pa.Array, arrow_type: pa.DataType, wire: str) -> np.ndarray:
    """The column's values in their wire dtype (nulls as zero)."""
    if pa.types.is_boolean(arrow_type):
        native = array.fill_null(False).to_numpy(zero_copy_only=False)
    elif pa.types.is_date(arrow_type):
        native = array.view(pa.int32()).fill_null(0).to_numpy() - _EPOCH_DAYS
    elif pa.types.is_timestamp(arrow_type):
        native = array.view(pa.int64()).fill_null(0).to_numpy() - _EPOCH_MICROS
    else:
        native = array.fill_null(0).to_numpy()
    return native.astype(wire)
