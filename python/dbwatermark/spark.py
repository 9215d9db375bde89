"""Watermarks for Spark DataFrames.

:func:`embed` marks a DataFrame where it lives: the driver plans once (from
the first :data:`~dbwatermark.PROFILE_ROWS` rows and the row count) and every
partition is marked by ``mapInArrow`` under that one plan, so the result is
the one ``dbwm embed`` gives for the same rows, with the same schema and no
collect to the driver. :func:`extract` tallies each partition with
``mapInArrow``, ships the compact tally bytes, merges them tree-wise and
decodes on the driver.

The watermark key reaches the executors either inside the task (``key=``,
serialized with the task as any Spark closure is; use Spark's RPC encryption,
``spark.network.crypto.enabled``, on a shared cluster) or from the executors'
own environment (``key=None`` reads ``DBWM_KEY``; set it with
``spark.executorEnv.DBWM_KEY``). It is never written to the DataFrame, the
plan or the tallies.

The executors need the package too: see the repository's README (``Python``)
for shipping the wheel with ``spark.archives`` or ``--py-files``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Sequence, Union

import pyarrow as pa

from . import (
    DEFAULT_THRESHOLD,
    PROFILE_ROWS,
    Candidates,
    Extraction,
    InvalidInputError,
    Plan,
    Tally,
    Watermarker,
    _mode,
)

__all__ = ["embed", "extract", "plan"]

# Tallies of this many partitions are merged per step of the tree.
_TREE_DEPTH = 3


def _head(df: Any) -> pa.Table:
    """The first PROFILE_ROWS rows of `df`, as Arrow (what a plan reads)."""
    head = df.limit(PROFILE_ROWS)
    if hasattr(head, "toArrow"):
        return head.toArrow()
    return pa.Table.from_pandas(head.toPandas(), preserve_index=False)


def plan(
    df: Any,
    key: Optional[str],
    pk: Union[str, Sequence[str]],
    columns: Optional[Sequence[str]] = None,
    content: Optional[str] = None,
    rows: Optional[int] = None,
    **plan_options: Any,
) -> Plan:
    """The plan :func:`embed` follows: made on the driver from the first
    :data:`~dbwatermark.PROFILE_ROWS` rows of ``df``, with the density for
    ``rows`` rows (default: ``df.count()``)."""
    w = Watermarker(key=key)
    total = df.count() if rows is None else rows
    return w.plan(_head(df), pk, columns, content=content, rows=total, **plan_options)


def _batches(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _reader(batches: Iterator[pa.RecordBatch]) -> Optional[pa.RecordBatchReader]:
    """A partition's batches as a reader (``None`` for an empty partition)."""
    first = next(batches, None)
    if first is None:
        return None
    return pa.RecordBatchReader.from_batches(first.schema, _batches(first, batches))


def embed(
    df: Any,
    key: Optional[str],
    content: str,
    pk: Union[str, Sequence[str]],
    columns: Optional[Sequence[str]] = None,
    **plan_options: Any,
) -> Any:
    """A watermarked copy of the Spark DataFrame ``df`` carrying ``content``,
    with the same schema and rows: the marks ``dbwm embed`` would make on the
    same rows with the same options (``plan_options`` as
    :meth:`dbwatermark.Watermarker.embed`; ``plan=`` reuses a plan, ``rows=``
    skips the count). Lazy, like any transformation: nothing is marked until
    the result is written or collected. ``pseudo_column=NAME`` (with
    ``pseudo_column_format``) adds that column instead and changes no real
    cell, as :meth:`dbwatermark.Watermarker.embed`; pseudo-rows are not
    made here (a partition does not know the other partitions' keys)."""
    if not isinstance(content, str):
        raise InvalidInputError("`content` must be a string")
    options = dict(plan_options)
    mode, settings = _mode(options, columns)
    if mode == "pseudo-rows":
        raise InvalidInputError(
            "dbwatermark.spark.embed cannot add pseudo-rows: a partition does not know the other "
            "partitions' keys, and a fabricated row must take none; use mode='pseudo-column', or "
            "Watermarker.embed on the whole table"
        )
    if "report" in options:
        raise InvalidInputError("dbwatermark.spark.embed takes no `report`: it is lazy")
    if mode == "pseudo-column":
        return _embed_pseudo_column(df, key, content, pk, settings, options)
    plan_options = options
    given = plan_options.pop("plan", None)
    rows = plan_options.pop("rows", None)
    shared = given if given is not None else plan(df, key, pk, columns, content, rows, **plan_options)
    if not isinstance(shared, Plan):
        raise TypeError(f"`plan` must be a dbwatermark.Plan, got {type(shared).__name__}")
    plan_json = shared.to_json()
    key_fingerprint = Watermarker(key=key).key_fingerprint

    def mark(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        w = _checked_watermarker(key, key_fingerprint)
        reader = _reader(batches)
        if reader is not None:
            yield from w.embed_batches(reader, content, pk, plan=Plan.from_json(plan_json))

    return df.mapInArrow(mark, df.schema)


def _checked_watermarker(key: Optional[str], key_fingerprint: str) -> Watermarker:
    """The executor's Watermarker, refused unless its key is the driver's."""
    w = Watermarker(key=key)
    if w.key_fingerprint != key_fingerprint:
        raise InvalidInputError(
            f"this executor's key (fingerprint {w.key_fingerprint}) is not the driver's "
            f"({key_fingerprint}): set the same DBWM_KEY on every executor"
        )
    return w


def _embed_pseudo_column(
    df: Any,
    key: Optional[str],
    content: str,
    pk: Union[str, Sequence[str]],
    settings: Dict[str, Any],
    options: Dict[str, Any],
) -> Any:
    """:func:`embed` in mode ``pseudo-column``: each partition's batches
    with the column added as they stream (its values depend on each row's
    key alone, so partitions need no shared plan)."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    name, fmt = settings["name"], settings["format"]
    if name in df.columns:
        raise InvalidInputError(f"the pseudo-column needs a new name, and `{name}` is already a column")
    unknown = sorted(set(options) - {"virtual_key"})
    if unknown:
        raise InvalidInputError(f"mode='pseudo-column' takes no {unknown} (no real cell is marked)")
    virtual_key = options.get("virtual_key", False)
    field = StructField(name, LongType() if fmt == "code" else StringType(), True)
    schema = StructType(df.schema.fields + [field])
    key_fingerprint = Watermarker(key=key).key_fingerprint

    def add(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        w = _checked_watermarker(key, key_fingerprint)
        reader = _reader(batches)
        if reader is not None:
            yield from w.embed_batches(
                reader, content, pk, pseudo_column=name, pseudo_column_format=fmt, virtual_key=virtual_key
            )

    return df.mapInArrow(add, schema)


def _merge(a: bytes, b: bytes) -> bytes:
    return Tally.from_bytes(a).merge(Tally.from_bytes(b)).to_bytes()


def extract(
    df: Any,
    key: Optional[str],
    pk: Union[str, Sequence[str]],
    candidates: Candidates = None,
    threshold: float = DEFAULT_THRESHOLD,
    columns: Optional[Sequence[str]] = None,
    **options: Any,
) -> Extraction:
    """The watermarks in the Spark DataFrame ``df`` (a leak, or part of one)
    and, with ``candidates`` (a list of contents or a registry path on the
    driver), the issued copies it comes from: the same result as
    ``dbwm extract`` on the same rows. Each partition is tallied where it
    lives (``mapInArrow``) under one plan made on the driver from the first
    rows (``plan=`` to give one; ``rules``/``rule`` as for the embed); only
    tally bytes travel, merged tree-wise."""
    w = Watermarker(key=key)
    shared = options.pop("plan", None)
    if shared is None:
        # A leak of a table of codes carries its mark in a pseudo-column
        # or pseudo-rows only: its plan marks nothing, and that is no error.
        shared = w._reading_plan(
            _head(df), pk, columns, rules=options.pop("rules", None), rule=options.pop("rule", None)
        )
    if options:
        raise TypeError(f"unknown option(s) {sorted(options)}; known: ['plan', 'rules', 'rule']")
    plan_json = shared.to_json()

    def tally(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        reader = _reader(batches)
        if reader is None:
            return
        t = Watermarker(key=key).tally(reader, pk, plan=Plan.from_json(plan_json))
        yield pa.RecordBatch.from_pydict({"tally": pa.array([t.to_bytes()], pa.binary())})

    parts = df.mapInArrow(tally, "tally binary").rdd.map(lambda row: bytes(row[0]))
    if parts.isEmpty():
        merged = w.tally(_head(df).slice(0, 0), pk, plan=shared)
    else:
        merged = Tally.from_bytes(parts.treeReduce(_merge, depth=_TREE_DEPTH))
    return w.decode(merged, candidates, threshold)
