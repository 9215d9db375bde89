"""Invisible, keyed, robust watermarks in database tables.

``dbwatermark`` hides a short string (the *content*, e.g. ``"acme->partner-42"``)
in the low digits of a table's numbers and the ends of its free text, in the
rows a keyed hash of the primary key selects. A leaked copy is traced from its
rows alone, after rows were deleted, shuffled or edited. Columns whose meaning
a mark would change (categories, codes, calendar fields, identifiers) are left
alone, and marked numbers stay inside their observed range.

It takes any Arrow data without copying it: pyarrow Tables, RecordBatches and
RecordBatchReaders, Polars DataFrames and pandas DataFrames. Spark helpers are
in :mod:`dbwatermark.spark`.

>>> import pyarrow as pa
>>> import dbwatermark
>>> table = pa.table({
...     "id": list(range(20_000)),
...     "price": [round(10 + (i * 7919 % 10_000) / 100, 2) for i in range(20_000)],
... })
>>> w = dbwatermark.Watermarker(key="a long random secret")
>>> copy = w.embed(table, "acme->partner-42", pk="id")
>>> copy.schema == table.schema
True
>>> w.extract(copy.slice(0, 5_000), pk="id").watermarks[0].content
'acme->partner-42'
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import (
    DbwatermarkError,
    InvalidInputError,
    KeyMismatchError,
    KeyNotFoundError,
    NothingToMarkError,
    PlanError,
    TallyFormatError,
)

__all__ = [
    "DEFAULT_ROW_SPACING",
    "DEFAULT_THRESHOLD",
    "MODES",
    "PROFILE_ROWS",
    "DbwatermarkError",
    "Extraction",
    "Identified",
    "InvalidInputError",
    "KeyMismatchError",
    "KeyNotFoundError",
    "NothingToMarkError",
    "Plan",
    "PlanError",
    "Tally",
    "TallyFormatError",
    "Watermark",
    "Watermarker",
]

__version__ = "0.1.0"

#: Rows a plan is profiled from: the first this many rows of the input.
PROFILE_ROWS: int = _native.PROFILE_ROWS
#: Default largest corrected p-value at which a candidate is named.
DEFAULT_THRESHOLD: float = _native.DEFAULT_THRESHOLD
#: The smallest leak an embed must still trace by default (as ``dbwm embed``).
DEFAULT_TRACE_ROWS = 1000
#: The content whose length sets a plan's density when none is given (as
#: ``dbwm plan``).
PLACEHOLDER_CONTENT = "0123456789abcdef"

_RULE_SETTINGS = ("mark", "kind", "min", "max", "max_change")

Candidates = Union[Sequence[str], str, "os.PathLike[str]", None]


def _arrow(data: Any) -> Tuple[Any, Optional[int]]:
    """``data`` as an object the engine reads (Arrow C stream or array), and
    its number of rows when it is known without reading it."""
    rows = None
    for attr in ("num_rows", "height"):
        value = getattr(data, attr, None)
        if isinstance(value, int):
            rows = value
            break
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        if rows is None and _is_pandas(data):
            rows = len(data)
        return data, rows
    if _is_pandas(data):
        import pyarrow as pa

        return pa.Table.from_pandas(data, preserve_index=False), len(data)
    raise TypeError(
        "expected Arrow data (a pyarrow Table, RecordBatch or RecordBatchReader, a Polars "
        f"or pandas DataFrame, or anything with __arrow_c_stream__), got {type(data).__name__}"
    )


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas.") and hasattr(data, "columns")


def _names(value: Union[str, Sequence[str], None], what: str) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    names = list(value)
    for n in names:
        if not isinstance(n, str):
            raise InvalidInputError(f"`{what}`: column names must be strings, got {n!r}")
    return names


def _pk(pk: Union[str, Sequence[str]]) -> List[str]:
    names = _names(pk, "pk")
    if not names:
        raise InvalidInputError("a primary key is required: name at least one key column in `pk`")
    return names


def _rule_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rules(
    rules: Union[Mapping[str, Mapping[str, Any]], str, "os.PathLike[str]", None],
    rule: Union[Sequence[str], str, None],
) -> List[Tuple[str, str, str]]:
    """The owner's rules as ``(column, setting, value)`` triples: from a
    mapping ``{column: {setting: value}}`` or a TOML file of ``[columns.NAME]``
    tables (as ``dbwm --rules``), then ``rule`` strings
    ``COLUMN:SETTING=VALUE[,SETTING=VALUE...]`` (as ``dbwm --rule``)."""
    triples: List[Tuple[str, str, str]] = []
    if isinstance(rules, (str, os.PathLike)):
        try:
            import tomllib
        except ImportError as e:  # Python < 3.11
            raise InvalidInputError(
                "reading a rules file needs Python 3.11 (tomllib); pass the rules as a dict"
            ) from e
        path = os.fspath(rules)
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidInputError(f"cannot read rules file `{path}`: {e}") from None
        unknown = set(doc) - {"columns"}
        if unknown:
            raise InvalidInputError(f"{path}: unknown table(s) {sorted(unknown)}; expected [columns.NAME]")
        rules = doc.get("columns", {})
    if rules is not None:
        if not isinstance(rules, Mapping):
            raise InvalidInputError("`rules` must be a dict {column: {setting: value}} or a TOML file path")
        for column, settings in rules.items():
            if not isinstance(settings, Mapping):
                raise InvalidInputError(f"rule for column `{column}`: expected a dict of settings")
            for setting, value in settings.items():
                triples.append((str(column), str(setting), _rule_value(value)))
    for flag in [rule] if isinstance(rule, str) else (rule or []):
        column, sep, rest = flag.partition(":")
        if not sep or not column or not rest:
            raise InvalidInputError(f"rule `{flag}`: expected COLUMN:SETTING=VALUE[,SETTING=VALUE...]")
        for part in rest.split(","):
            setting, eq, value = part.partition("=")
            if not eq:
                raise InvalidInputError(f"rule `{flag}`: `{part}` is not SETTING=VALUE")
            triples.append((column, setting.strip(), value.strip()))
    return triples


@dataclass(frozen=True)
class Watermark:
    """A watermark found in a table."""

    #: The watermark content.
    content: str
    #: The columns that carry it.
    columns: List[str]
    #: Votes that agree with the decoded content.
    votes_agree: int
    #: Votes that disagree (edited cells, unmarked rows).
    votes_disagree: int
    #: Bound on the chance that a table without it reports it.
    false_positive_probability: float
    #: The density it was read at, as ``1/N``.
    density: str


@dataclass(frozen=True)
class Identified:
    """An issued copy the leak was traced to."""

    #: The copy's content.
    content: str
    #: Code positions that agree with it.
    agree: int
    #: Code positions read.
    total: int
    #: Corrected p-value of that much agreement by chance.
    p_value: float
    #: Its base-10 logarithm (finite where ``p_value`` underflows).
    log10_p_value: float
    #: The recipient, when the registry recorded one.
    recipient: Optional[str] = None
    #: The whole registry record and score, as ``dbwm extract`` prints it.
    record: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class Extraction:
    """What extraction found: ``watermarks`` decoded from the table, and the
    issued copies ``identified`` when candidates were given.
    :meth:`to_dict` gives the JSON of ``dbwm extract`` (with ``files`` empty)."""

    def __init__(self, report: Dict[str, Any]):
        self._report = report
        #: Every watermark decoded, strongest evidence first.
        self.watermarks: List[Watermark] = [
            Watermark(
                content=w["content"],
                columns=list(w["columns"]),
                votes_agree=w["votes_agree"],
                votes_disagree=w["votes_disagree"],
                false_positive_probability=w["false_positive_probability"],
                density=w["density"],
            )
            for w in report["watermarks"]
        ]
        #: The candidates named, best first.
        self.identified: List[Identified] = [
            Identified(
                content=s["content"],
                agree=s["agree"],
                total=s["total"],
                p_value=s["p_value"],
                log10_p_value=s["log10_p_value"],
                recipient=s.get("recipient"),
                record=dict(s),
            )
            for s in report["identified"]
        ]
        #: Rows read.
        self.rows: int = report["rows"]
        #: Votes read per column.
        self.votes: Dict[str, int] = {c["name"]: c["votes"] for c in report["columns"]}

    @property
    def candidates(self) -> Optional[Dict[str, Any]]:
        """The candidate test (``tested``, ``threshold``, ``best_other``,
        ``more_rows_needed``), when candidates were given."""
        c = self._report.get("candidates")
        return json.loads(json.dumps(c)) if c is not None else None

    def to_dict(self) -> Dict[str, Any]:
        """The report as ``dbwm extract`` prints it (a fresh copy)."""
        return json.loads(json.dumps(self._report))

    def __bool__(self) -> bool:
        return bool(self.watermarks or self.identified)

    def __repr__(self) -> str:
        return (
            f"Extraction(rows={self.rows}, watermarks={[w.content for w in self.watermarks]!r}, "
            f"identified={[i.content for i in self.identified]!r})"
        )


class Plan:
    """How a table is marked: the key, the density and every non-key
    column's kind, carrier and limits. Made once (:meth:`Watermarker.plan`)
    and given to every partition, so that partitions embedded or tallied
    apart agree exactly; it pickles (for Spark broadcasts) and travels as
    JSON. It holds nothing secret."""

    def __init__(self, native: Any):
        self._native = native

    @staticmethod
    def from_json(text: str) -> "Plan":
        """Reads the JSON of :meth:`to_json`; raises :class:`PlanError`."""
        return Plan(_native.Plan.from_json(text))

    def to_json(self) -> str:
        """The plan as one line of JSON."""
        return self._native.to_json()

    @property
    def fingerprint(self) -> str:
        """16 hex digits over the marked columns and their limits (as in the
        registry record and ``dbwm plan``)."""
        return self._native.fingerprint

    @property
    def density(self) -> str:
        """The density, as ``1/N``."""
        return self._native.density

    @property
    def key(self) -> List[str]:
        """The primary-key columns."""
        return self._native.key

    @property
    def columns(self) -> List[Dict[str, Any]]:
        """Every non-key column's plan: ``name``, ``kind``, ``carrier``,
        ``min``, ``max``, ``float_decimals``, ``max_change``, ``reason``."""
        return json.loads(self._native.columns_json)

    @property
    def marked(self) -> List[str]:
        """The columns that carry marks."""
        return [c["name"] for c in self.columns if c["carrier"] != "none"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Plan) and self._native == other._native

    def __reduce__(self):
        return (Plan.from_json, (self.to_json(),))

    def __repr__(self) -> str:
        return repr(self._native)


class Tally:
    """The votes of a table's marked columns under one key: what extraction
    reads before decoding. Tallies of any partitioning of a table merge into
    exactly the tally of the whole; :meth:`to_bytes` is compact (about a byte
    per row and marked column) and carries the scheme version and the key's
    fingerprint, never the key or any value of the table."""

    def __init__(self, native: Any):
        self._native = native

    @staticmethod
    def from_bytes(data: bytes) -> "Tally":
        """Reads the bytes of :meth:`to_bytes`; raises :class:`TallyFormatError`
        naming the byte where they stop being a tally."""
        return Tally(_native.Tally.from_bytes(bytes(data)))

    def to_bytes(self) -> bytes:
        """The versioned binary form."""
        return self._native.to_bytes()

    def merge(self, other: "Tally") -> "Tally":
        """Adds ``other``'s votes into this tally and returns it; raises
        :class:`KeyMismatchError` (merging nothing) when ``other`` was made
        with another key."""
        if not isinstance(other, Tally):
            raise TypeError(f"can only merge a Tally, got {type(other).__name__}")
        self._native.merge(other._native)
        return self

    @property
    def rows(self) -> int:
        """Rows read."""
        return self._native.rows

    @property
    def key_fingerprint(self) -> str:
        """The public fingerprint of the key the tally was made with."""
        return self._native.key_fingerprint

    @property
    def votes(self) -> Dict[str, int]:
        """Votes read per column."""
        return dict(self._native.votes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tally) and self._native == other._native

    def __reduce__(self):
        return (Tally.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return f"Tally(rows={self.rows}, votes={self.votes!r}, key_fingerprint='{self.key_fingerprint}')"


def _virtual_key(options: Mapping[str, Any]) -> bool:
    value = options.get("virtual_key", False)
    if not isinstance(value, bool):
        raise InvalidInputError(f"`virtual_key` must be True or False, got {value!r}")
    return value


#: The embed modes, as ``dbwm embed --mode``.
MODES = ("cells", "pseudo-rows", "pseudo-column")
#: About one fabricated row per this many real rows in pseudo-rows mode (as
#: ``dbwm embed --row-spacing``).
DEFAULT_ROW_SPACING = 100
_MODE_OPTIONS = ("mode", "row_spacing", "pseudo_column", "pseudo_column_format", "report")


def _mode(options: Dict[str, Any], columns: Any) -> Tuple[str, Dict[str, Any]]:
    """The embed mode and its settings from ``options`` (which lose them),
    checked as ``dbwm embed`` checks its flags."""
    mode = options.pop("mode", None)
    spacing = options.pop("row_spacing", None)
    name = options.pop("pseudo_column", None)
    fmt = options.pop("pseudo_column_format", None)
    if mode is not None and mode not in MODES:
        raise InvalidInputError(f"`mode` must be one of {list(MODES)}, got {mode!r}")
    if name is not None and (spacing is not None or mode == "pseudo-rows"):
        raise InvalidInputError(
            "`pseudo_column` and `row_spacing` are two modes: give one (mode='pseudo-column' or 'pseudo-rows')"
        )
    if spacing is not None and mode == "pseudo-column":
        raise InvalidInputError("`row_spacing` is for mode='pseudo-rows', not 'pseudo-column'")
    if mode is None:
        mode = "pseudo-column" if name is not None else "pseudo-rows" if spacing is not None else "cells"
    if mode == "pseudo-rows":
        spacing = DEFAULT_ROW_SPACING if spacing is None else spacing
        if isinstance(spacing, bool) or not isinstance(spacing, int) or not 1 <= spacing < 2**32:
            raise InvalidInputError(
                f"`row_spacing` must be a positive integer (one fabricated row per N real rows), got {spacing!r}"
            )
    if mode == "pseudo-column":
        if name is None:
            raise InvalidInputError("mode='pseudo-column': name the added column with `pseudo_column`")
        if not isinstance(name, str):
            raise InvalidInputError(f"`pseudo_column` must be a column name, got {name!r}")
    if fmt is not None and mode != "pseudo-column":
        raise InvalidInputError("`pseudo_column_format` is for mode='pseudo-column'")
    if mode != "cells" and columns is not None:
        raise InvalidInputError(f"mode={mode!r} changes no real cell: `columns` (the columns to mark) does not apply")
    return mode, {"spacing": spacing, "name": name, "format": fmt or "code"}


def _plan_option(options: Mapping[str, Any]) -> Optional[Plan]:
    plan = options.get("plan")
    if plan is not None and not isinstance(plan, Plan):
        raise TypeError(f"`plan` must be a dbwatermark.Plan, got {type(plan).__name__}")
    return plan


def _secret(key: Optional[str], key_file: Union[str, "os.PathLike[str]", None]) -> str:
    if key is not None:
        if not isinstance(key, str):
            raise InvalidInputError("`key` must be a string")
        return key
    if key_file is not None:
        path = os.fspath(key_file)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"cannot read key file `{path}`: {e.__class__.__name__}") from None
        return text.splitlines()[0] if text else ""
    env = os.environ.get("DBWM_KEY")
    if env is None:
        raise KeyNotFoundError("no watermark key: pass key= or key_file=, or set DBWM_KEY")
    return env


class Watermarker:
    """A watermark key, ready to embed into and extract from tables.

    The key comes from ``key``, else the first line of ``key_file``, else the
    ``DBWM_KEY`` environment variable. It is never shown by ``repr``, in
    errors or in anything written; :attr:`key_fingerprint` names it publicly.

    Options of :meth:`embed`, :meth:`plan` and :meth:`embed_batches`
    (``**plan_options``), as the ``dbwm embed`` flags:

    * ``trace_rows`` (default 1000): the smallest leak that must still be
      traced; marks are made dense enough for it;
    * ``rules``: the owner's rules per column, ``{column: {setting: value}}``
      with settings ``mark``, ``kind``, ``min``, ``max``, ``max_change``, or
      the path of a TOML file of ``[columns.NAME]`` tables;
    * ``rule``: rule strings ``COLUMN:SETTING=VALUE[,...]``;
    * ``plan``: a :class:`Plan` to follow instead of profiling the input
      (partitions of one table);
    * ``rows``: the input's number of rows when it cannot be known before
      reading it (a RecordBatchReader); it sets the automatic density;
    * ``virtual_key`` (default False): ``pk`` names a *virtual key*,
      attributes a leak without the key column still has (a name, an
      e-mail, a date), whose normalised values place the marks, as
      ``dbwm embed --virtual-key``.

    :meth:`embed` also takes, as the ``dbwm embed`` flags:

    * ``mode`` (default ``"cells"``): ``"pseudo-rows"`` adds fabricated rows
      that carry the mark, about one per ``row_spacing`` (default 100) real
      rows, each after the real row it was drawn near, with a new key and
      values drawn from the table's own; ``"pseudo-column"`` adds one
      column, ``pseudo_column`` (its name), of 8-digit codes or 8-character
      tokens (``pseudo_column_format``: ``"code"`` or ``"token"``). Neither
      changes a real cell. A leaker who deletes the pseudo-column deletes
      its mark; one who can tell fabricated rows from real ones can delete
      them (see the README for how hard that measured to be). Giving
      ``row_spacing`` or ``pseudo_column`` implies its mode;
    * ``report`` (default False): return ``(table, report)``, where
      ``report`` is a dict: ``rows`` written, ``density``,
      ``plan_fingerprint``, per marked column ``cells_marked`` and
      ``cells_changed``, ``real_cells_changed`` over all, and in
      pseudo-rows mode ``pseudo_rows`` (``added``, ``real_rows``,
      ``skipped_places``, ``outside_range``) and any ``warning``.

    Extraction takes ``columns``, ``rules``, ``rule``, ``plan`` and
    ``virtual_key``; give it the rules (and virtual key) the copy was
    embedded with. It finds pseudo-rows and a pseudo-column by itself.
    When a pseudo-rows embed placed a row at fewer than half its places
    (a table of codes and labels, whose values rarely let a row be
    recognised), it warns (``UserWarning``) and says so in the report.

    >>> import pyarrow as pa
    >>> w = Watermarker(key="a long random secret")
    >>> t = pa.table({"id": range(6000), "name": [f"name {i % 900}" for i in range(6000)],
    ...               "day": [i % 7 for i in range(6000)],
    ...               "amount": [i * 37 % 5000 + 100 for i in range(6000)]})
    >>> copy = w.embed(t, "acme->vk", pk=["name", "day"], virtual_key=True)
    >>> leak = copy.drop_columns(["id"]).slice(0, 3000)
    >>> w.extract(leak, pk=["name", "day"], virtual_key=True).watermarks[0].content
    'acme->vk'

    Pseudo-rows: the real rows unchanged, fabricated ones added.

    >>> t = pa.table({"id": range(0, 60000, 3),
    ...               "qty": [1 + i * 7 % 40 for i in range(20000)],
    ...               "price": [round(5 + (i * 7919 % 99991) / 100, 2) for i in range(20000)],
    ...               "city": [f"city {i * 31 % 700}" for i in range(20000)]})
    >>> copy, report = w.embed(t, "acme->rows", pk="id", mode="pseudo-rows", report=True)
    >>> copy.num_rows == 20000 + report["pseudo_rows"]["added"], report["real_cells_changed"]
    (True, 0)
    >>> w.extract(copy, pk="id").watermarks[0].columns
    ['(pseudo-rows)']
    """

    def __init__(self, key: Optional[str] = None, key_file: Union[str, "os.PathLike[str]", None] = None):
        self._engine = _native.Engine(_secret(key, key_file))
        self._by_trace_rows: Dict[Optional[int], Any] = {}

    @property
    def key_fingerprint(self) -> str:
        """The key's public fingerprint (16 hex digits), as in the registry."""
        return self._engine.key_fingerprint

    def __repr__(self) -> str:
        return f"Watermarker(key_fingerprint='{self.key_fingerprint}')"

    def __reduce__(self):
        raise TypeError(
            "a Watermarker holds a secret key and is not pickled; build one where it is needed "
            "(dbwatermark.spark passes the key to its executors itself)"
        )

    def _engine_for(self, trace_rows: Optional[int]) -> Any:
        if trace_rows is not None and (not isinstance(trace_rows, int) or trace_rows < 1):
            raise InvalidInputError(f"`trace_rows` must be a positive integer, got {trace_rows!r}")
        engine = self._by_trace_rows.get(trace_rows)
        if engine is None:
            engine = self._engine.with_trace_rows(trace_rows)
            self._by_trace_rows[trace_rows] = engine
        return engine

    @staticmethod
    def _options(options: Mapping[str, Any], allowed: Iterable[str]) -> Dict[str, Any]:
        allowed = set(allowed)
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; known: {sorted(allowed)}")
        return dict(options)

    def _marking(self, data: Any, pk: Any, columns: Any, options: Mapping[str, Any]):
        o = self._options(options, ("trace_rows", "rules", "rule", "plan", "rows", "virtual_key"))
        plan = _plan_option(o)
        arrow, rows = _arrow(data)
        rows = o.get("rows", rows)
        engine = self._engine_for(o.get("trace_rows", DEFAULT_TRACE_ROWS))
        triples = _rules(o.get("rules"), o.get("rule"))
        spec = _native.Columns(_pk(pk), _names(columns, "columns"), triples, _virtual_key(o))
        return engine, arrow, rows, spec, plan

    def plan(
        self,
        data: Any,
        pk: Union[str, Sequence[str]],
        columns: Optional[Sequence[str]] = None,
        content: Optional[str] = None,
        **plan_options: Any,
    ) -> Plan:
        """The plan an embed of ``content`` into ``data`` would follow
        (profiled from its first :data:`PROFILE_ROWS` rows), without marking
        anything: per column what it is, how it carries marks and why.

        >>> import pyarrow as pa
        >>> t = pa.table({"id": range(3000), "month": [1 + i % 12 for i in range(3000)],
        ...               "amount": [i * 37 % 5000 + 100 for i in range(3000)]})
        >>> p = Watermarker(key="k").plan(t, pk="id")
        >>> p.marked
        ['amount']
        >>> [c["kind"] for c in p.columns]
        ['calendar', 'measure']
        """
        return self._planned(data, pk, columns, content, plan_options, need_marked=True)

    def _reading_plan(
        self,
        data: Any,
        pk: Union[str, Sequence[str]],
        columns: Optional[Sequence[str]] = None,
        **plan_options: Any,
    ) -> Plan:
        """The plan a leak like ``data`` is read with, for partitions that
        share one: as :meth:`plan`, but one that marks no column (a table
        of codes, whose mark is in a pseudo-column or pseudo-rows) is no
        error."""
        return self._planned(data, pk, columns, None, plan_options, need_marked=False)

    def _planned(self, data, pk, columns, content, plan_options, need_marked: bool) -> Plan:
        engine, arrow, rows, spec, plan = self._marking(data, pk, columns, plan_options)
        if plan is not None:
            return plan
        return Plan(engine.plan(arrow, rows, content or PLACEHOLDER_CONTENT, spec, need_marked))

    def embed(
        self,
        data: Any,
        content: str,
        pk: Union[str, Sequence[str]],
        columns: Optional[Sequence[str]] = None,
        **plan_options: Any,
    ) -> "pyarrow.Table":  # noqa: F821
        """A watermarked copy of ``data`` carrying ``content`` (1 to 64 bytes
        of UTF-8): a ``pyarrow.Table`` with the input's schema and the same
        rows in the same order, marked cell for cell as ``dbwm embed`` marks
        the same data with the same options (in the lossless modes, the
        input's rows unchanged plus pseudo-rows or a pseudo-column, as
        ``dbwm embed --mode``). Unmarked columns are shared
        with the input, not copied. ``pk`` is the primary-key column or
        columns; ``columns`` limits the columns marked (default: every column
        the plan finds able to carry a mark without changing its meaning).
        See the class for ``plan_options``.

        Raises :class:`InvalidInputError` naming a missing column, a key
        column named for marking, a bad rule or content, and
        :class:`NothingToMarkError` when no column can carry a mark.
        """
        if not isinstance(content, str):
            raise InvalidInputError("`content` must be a string")
        options = dict(plan_options)
        report = options.pop("report", False)
        if not isinstance(report, bool):
            raise InvalidInputError(f"`report` must be True or False, got {report!r}")
        mode, settings = _mode(options, columns)
        engine, arrow, rows, spec, plan = self._marking(data, pk, columns, options)
        native_plan = plan and plan._native
        if mode == "pseudo-rows":
            table, text = self._engine.embed_pseudo_rows(arrow, content, spec, native_plan, settings["spacing"])
        elif mode == "pseudo-column":
            table, text = self._engine.embed_pseudo_column(
                arrow, content, spec, native_plan, settings["name"], settings["format"]
            )
        else:
            table, text = engine.embed(arrow, rows, content, spec, native_plan)
        details = json.loads(text)
        if "warning" in details:
            warnings.warn(details["warning"], stacklevel=2)
        return (table, details) if report else table

    def embed_batches(
        self,
        reader: Any,
        content: str,
        pk: Union[str, Sequence[str]],
        columns: Optional[Sequence[str]] = None,
        **plan_options: Any,
    ) -> "pyarrow.RecordBatchReader":  # noqa: F821
        """A ``pyarrow.RecordBatchReader`` that marks each batch of
        ``reader`` as it is read, holding one batch at a time (after the
        first :data:`PROFILE_ROWS` rows, read now to make the plan, unless a
        ``plan`` is given). Without ``rows``, the density is the one for a
        stream of unknown length (as the Rust ``embed_stream``) made dense
        enough for ``trace_rows``. With ``pseudo_column`` (or
        ``mode="pseudo-column"``) each batch gains that column instead, as
        :meth:`embed` adds it; pseudo-rows are :meth:`embed`'s alone."""
        if not isinstance(content, str):
            raise InvalidInputError("`content` must be a string")
        options = dict(plan_options)
        if "report" in options:
            raise InvalidInputError("embed_batches takes no `report`: it returns the stream before any row is read")
        mode, settings = _mode(options, columns)
        if mode == "pseudo-rows":
            raise InvalidInputError(
                "embed_batches cannot add pseudo-rows: they need the whole table's keys before the first "
                "row is written; use embed (mode='pseudo-column' streams)"
            )
        engine, arrow, rows, spec, plan = self._marking(reader, pk, columns, options)
        if mode == "pseudo-column":
            return self._engine.embed_pseudo_column_batches(
                arrow, content, spec, plan and plan._native, settings["name"], settings["format"]
            )
        return engine.embed_batches(arrow, rows, content, spec, plan and plan._native)

    def tally(
        self,
        data: Any,
        pk: Union[str, Sequence[str]],
        columns: Optional[Sequence[str]] = None,
        **options: Any,
    ) -> Tally:
        """The votes of ``data``'s marked columns, to merge with other parts'
        tallies and :meth:`decode`. For exactly the extraction of the whole
        table, give every part the same ``plan`` (from :meth:`plan` on the
        whole or its first rows); without one, each part is planned from its
        own rows. Also takes ``rules`` and ``rule``."""
        o = self._options(options, ("rules", "rule", "plan", "virtual_key"))
        plan = _plan_option(o)
        arrow, _rows = _arrow(data)
        triples = _rules(o.get("rules"), o.get("rule"))
        spec = _native.Columns(_pk(pk), _names(columns, "columns"), triples, _virtual_key(o))
        native = self._engine.tally(arrow, spec, plan and plan._native)
        return Tally(native)

    def decode(self, tally: Tally, candidates: Candidates = None, threshold: float = DEFAULT_THRESHOLD) -> Extraction:
        """The watermarks ``tally`` carries and, with ``candidates`` (a list
        of issued contents, or the path of a registry written by ``dbwm
        embed --register``), the issued copies it is traced to at corrected
        p-value ``threshold``. Raises :class:`KeyMismatchError` for a tally
        made with another key."""
        if not isinstance(tally, Tally):
            raise TypeError(f"expected a dbwatermark.Tally, got {type(tally).__name__}")
        contents, registry = self._candidates(candidates)
        if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise InvalidInputError(f"`threshold` must be a p-value in (0, 1], got {threshold!r}")
        for warning in self._engine.candidate_warnings(contents, registry):
            warnings.warn(warning, stacklevel=3)
        report = self._engine.decode(tally._native, contents, registry, float(threshold))
        return Extraction(json.loads(report))

    def extract(
        self,
        data: Any,
        pk: Union[str, Sequence[str]],
        candidates: Candidates = None,
        threshold: float = DEFAULT_THRESHOLD,
        **options: Any,
    ) -> Extraction:
        """The watermarks in ``data`` (a leak, or part of one) and, with
        ``candidates``, the issued copies it comes from; the same result as
        ``dbwm extract`` on the same rows (see :meth:`decode`). Takes
        ``columns``, ``rules``, ``rule`` and ``plan`` as :meth:`tally`."""
        o = self._options(options, ("columns", "rules", "rule", "plan", "virtual_key"))
        columns = o.pop("columns", None)
        return self.decode(self.tally(data, pk, columns, **o), candidates, threshold)

    @staticmethod
    def _candidates(candidates: Candidates) -> Tuple[Optional[List[str]], Optional[str]]:
        if candidates is None:
            return None, None
        if isinstance(candidates, (str, os.PathLike)):
            return None, os.fspath(candidates)
        contents = list(candidates)
        for c in contents:
            if not isinstance(c, str):
                raise InvalidInputError(f"candidates must be strings, got {c!r}")
        if not contents:
            raise InvalidInputError("`candidates` is empty")
        return contents, None
