"""Shared fixtures: a flights-like table with codes, calendar fields and
measures, the `dbwm` binary, and a key."""

import os
import pathlib
import random

import pyarrow as pa
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
KEY = "python tests: a long random secret"


def flights(rows: int, seed: int = 7) -> pa.Table:
    """A table like real flight records: an id key, carrier codes, months,
    HHMM departure times, distances, delays with NULLs, fares in cents."""
    rng = random.Random(seed)
    carriers = ["AA", "UA", "DL", "B6", "WN", "EV", "9E", "MQ"]
    return pa.table(
        {
            "id": pa.array(range(1, rows + 1), pa.int64()),
            "carrier": pa.array([rng.choice(carriers) for _ in range(rows)]),
            "month": pa.array([rng.randint(1, 12) for _ in range(rows)], pa.int32()),
            "dep_time": pa.array([rng.randint(5, 23) * 100 + rng.randint(0, 59) for _ in range(rows)], pa.int32()),
            "distance": pa.array([rng.randint(80, 4983) for _ in range(rows)], pa.int64()),
            "dep_delay": pa.array(
                [None if rng.random() < 0.03 else rng.randint(-20, 400) for _ in range(rows)], pa.float64()
            ),
            "fare": pa.array([round(rng.uniform(39, 899), 2) for _ in range(rows)], pa.float64()),
        }
    )


@pytest.fixture(scope="session")
def table() -> pa.Table:
    return flights(30_000)


@pytest.fixture(scope="session")
def key() -> str:
    return KEY


@pytest.fixture(scope="session")
def dbwm() -> str:
    """The `dbwm` binary: $DBWM_BIN, else the repository's release build."""
    path = os.environ.get("DBWM_BIN") or str(REPO / "target" / "release" / "dbwm")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no dbwm binary at {path}: run `cargo build --release` or set DBWM_BIN")
    return path
