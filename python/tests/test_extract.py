"""Extraction from Python: the CLI's JSON, candidates from a list or a
registry, tallies that merge across any partitioning and travel as bytes."""

import json
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dbwatermark
from conftest import flights


@pytest.fixture(scope="module")
def copy(table, key):
    return dbwatermark.Watermarker(key=key).embed(table, "acme->partner-9", pk="id")


def test_extract_finds_the_content_in_a_shuffled_sample(copy, key):
    w = dbwatermark.Watermarker(key=key)
    leak = copy.take(list(range(copy.num_rows - 1, 0, -3)))
    found = w.extract(leak, pk="id")
    assert found.watermarks[0].content == "acme->partner-9"
    assert found.watermarks[0].false_positive_probability < 1e-12
    assert set(found.watermarks[0].columns) <= {"distance", "dep_delay", "fare"}
    assert found.rows == leak.num_rows and bool(found)


def test_extract_gives_the_cli_json(copy, key, dbwm, tmp_path):
    leak = copy.slice(0, 3_000)
    pq.write_table(leak, tmp_path / "leak.parquet")
    registry = tmp_path / "issued.jsonl"
    registry.write_text("".join(json.dumps({"content": f"acme->partner-{i}"}) + "\n" for i in range(5, 12)))
    cli = subprocess.run(
        [dbwm, "extract", "--key", key, "--pk", "id", "--candidates", str(registry), str(tmp_path / "leak.parquet")],
        capture_output=True, text=True,
    )
    assert cli.returncode == 0, cli.stderr
    want = json.loads(cli.stdout)
    got = dbwatermark.Watermarker(key=key).extract(leak, pk="id", candidates=registry).to_dict()
    assert got["files"] == []
    want["files"] = []
    assert got == want
    assert got["identified"][0]["content"] == "acme->partner-9"


def test_candidates_as_a_list_name_the_copy_with_a_p_value(copy, key):
    w = dbwatermark.Watermarker(key=key)
    found = w.extract(copy.slice(1_000, 1_000), pk="id", candidates=[f"acme->partner-{i}" for i in range(20)])
    assert [i.content for i in found.identified] == ["acme->partner-9"]
    best = found.identified[0]
    assert best.p_value < 1e-9 and best.agree <= best.total
    assert found.candidates["tested"] == 20


def test_merged_tallies_of_1_7_and_64_partitions_give_identical_evidence(copy, key):
    w = dbwatermark.Watermarker(key=key)
    plan = w.plan(copy, "id")
    results = []
    for parts in (1, 7, 64):
        size = -(-copy.num_rows // parts)
        tallies = [w.tally(copy.slice(i, size), "id", plan=plan) for i in range(0, copy.num_rows, size)]
        shipped = [dbwatermark.Tally.from_bytes(t.to_bytes()) for t in tallies]
        merged = shipped[0]
        for t in shipped[1:]:
            assert merged.merge(t) is merged
        results.append((merged, w.decode(merged, candidates=["acme->partner-8", "acme->partner-9"]).to_dict()))
    whole = w.extract(copy, "id", candidates=["acme->partner-8", "acme->partner-9"]).to_dict()
    for merged, report in results:
        assert merged == results[0][0]
        assert report == whole
    assert results[0][0].rows == copy.num_rows


def test_a_ten_thousand_row_partition_tally_is_at_most_32_kb(copy, key):
    t = dbwatermark.Watermarker(key=key).tally(copy.slice(0, 10_000), "id")
    size = len(t.to_bytes())
    assert len(t.votes) == 3
    assert size <= 32 * 1024, size


def test_tallies_of_two_keys_refuse_to_merge_with_a_clear_error(copy, key):
    a = dbwatermark.Watermarker(key=key).tally(copy.slice(0, 500), "id")
    other = dbwatermark.Watermarker(key="another key")
    b = other.tally(copy.slice(500, 500), "id")
    before = a.to_bytes()
    with pytest.raises(dbwatermark.KeyMismatchError, match="different keys") as e:
        a.merge(b)
    assert isinstance(e.value, ValueError)
    assert a.to_bytes() == before, "nothing merged"
    with pytest.raises(dbwatermark.KeyMismatchError):
        other.decode(a)


def test_bytes_that_are_not_a_tally_raise_tally_format_error_naming_the_place(copy, key):
    good = dbwatermark.Watermarker(key=key).tally(copy.slice(0, 500), "id").to_bytes()
    with pytest.raises(dbwatermark.TallyFormatError, match="DBWT"):
        dbwatermark.Tally.from_bytes(b"PAR1 not a tally")
    with pytest.raises(dbwatermark.TallyFormatError, match="ends early"):
        dbwatermark.Tally.from_bytes(good[:-3])
    with pytest.raises(dbwatermark.TallyFormatError, match="after the tally"):
        dbwatermark.Tally.from_bytes(good + b"\0")
    import random

    rng = random.Random(5)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            dbwatermark.Tally.from_bytes(bytes(data[: rng.randint(0, len(data))]))
        except dbwatermark.TallyFormatError:
            pass


def test_a_table_without_the_mark_finds_nothing(key):
    w = dbwatermark.Watermarker(key=key)
    found = w.extract(flights(5_000, seed=99), "id", candidates=["acme->partner-9"])
    assert found.watermarks == [] and found.identified == [] and not found


def test_a_virtual_key_copy_is_read_without_the_key_column_and_its_plan_travels(table, key, dbwm, tmp_path):
    w = dbwatermark.Watermarker(key=key)
    vk = ["carrier", "month", "dep_time"]
    copy = w.embed(table, "acme->vk-9", pk=vk, virtual_key=True)
    for name in vk + ["id"]:
        assert copy.column(name).equals(table.column(name)), name
    # The leak lost `id`, its rows are reversed and its codes are lower case.
    leak = copy.drop_columns(["id"]).take(list(range(copy.num_rows - 1, 0, -3)))
    leak = leak.set_column(
        leak.schema.get_field_index("carrier"), "carrier", pa.array([c.lower() for c in leak.column("carrier").to_pylist()])
    )
    found = w.extract(leak, pk=vk, virtual_key=True)
    assert found.watermarks[0].content == "acme->vk-9"
    # The CLI reads the same leak with --virtual-key.
    pq.write_table(leak, tmp_path / "leak.parquet")
    cli = subprocess.run(
        [dbwm, "extract", "--key", key, "--virtual-key", ",".join(vk), str(tmp_path / "leak.parquet")],
        capture_output=True, text=True,
    )
    assert json.loads(cli.stdout)["watermarks"][0]["content"] == "acme->vk-9", cli.stderr
    # A plan made with a virtual key says so and marks partitions the same way.
    plan = dbwatermark.Plan.from_json(w.plan(table, vk, virtual_key=True).to_json())
    assert json.loads(plan.to_json())["virtual_key"] is True
    part = w.embed(table.slice(0, 4_000), "acme->vk-9", pk=vk, plan=plan)
    assert part.combine_chunks().equals(copy.slice(0, 4_000).combine_chunks())
    with pytest.raises(dbwatermark.InvalidInputError, match="virtual_key"):
        w.embed(table, "x", pk=vk, virtual_key="yes")
