"""The exceptions of dbwatermark.

Every error the package raises is a :class:`DbwatermarkError`; errors caused
by bad input (a missing column, a bad option, bytes that are not a tally)
are also :class:`ValueError`, so existing ``except ValueError`` handlers
catch them. Messages name the column, row, setting or limit at fault and
never contain the watermark key.
"""


class DbwatermarkError(Exception):
    """Base class of every dbwatermark error."""


class InvalidInputError(DbwatermarkError, ValueError):
    """The input table, a column, the content or an option cannot be used."""


class NothingToMarkError(InvalidInputError):
    """No column of the table can carry a mark without changing what it means."""


class KeyMismatchError(DbwatermarkError, ValueError):
    """Tallies made with different keys were merged or decoded together."""


class TallyFormatError(DbwatermarkError, ValueError):
    """Bytes given to ``Tally.from_bytes`` are not a tally this version reads."""


class PlanError(DbwatermarkError, ValueError):
    """A plan's JSON is not a plan this version reads, or was edited."""


class KeyNotFoundError(DbwatermarkError, ValueError):
    """No watermark key was given, and ``DBWM_KEY`` is not set."""
