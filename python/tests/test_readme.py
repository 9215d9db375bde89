"""The README's Python examples run as written (the Spark one compiles; it
needs a cluster's paths)."""

import re

import pytest

from conftest import REPO

# The package's examples (the README's DSC section has an SDK example too).
BLOCKS = [
    b
    for b in re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    if "import dbwatermark" in b
]


def test_the_readme_has_pandas_polars_and_spark_examples():
    assert [("pandas" in b, "polars" in b, "spark" in b) for b in BLOCKS] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]


@pytest.mark.parametrize("block", [b for b in BLOCKS if "spark" not in b], ids=["pandas", "polars"])
def test_a_readme_example_runs(block):
    pytest.importorskip("polars")
    exec(compile(block, "README.md", "exec"), {})


def test_the_spark_example_compiles():
    compile(next(b for b in BLOCKS if "spark" in b), "README.md", "exec")
