#!/usr/bin/env python3
"""Does a marked copy still mean what the original means?

    python3 scripts/fidelity.py ORIGINAL.csv MARKED.csv --key id [--json OUT]

Both files are read with pandas as text first, so nothing is re-inferred
differently on the two sides. Per column it reports what a data owner checks
before shipping a copy:

- category/code columns (text with at most 1,000 distinct values, or integers
  with at most 60): distinct counts, labels the original never had, and the
  rows a filter on the two most common labels selects before and after;
- numeric columns: cells changed, values outside the original's min..max,
  sign flips, exact zeros that moved, whole numbers that stopped being whole;
- calendar and clock fields by name (year, month, day, hour, minute, and
  HHMM times: dep_time, sched_*_time, arr_time): values no calendar or clock
  has;
- group-by: for every category column, per group of at least 100 rows, the
  count and the mean of every measure; the largest shift of a group mean as
  a share of the measure's standard deviation.

A copy with more rows than the original that holds every original key
(`--mode pseudo-rows`) is checked as one: every original row must be there
unchanged, and the added rows must hold no new label, nothing out of range
or not a number, no invalid calendar, clock or date value and no fraction in
a whole-number column; per group, the copy's count growth and mean shift are
reported, a violation where a mean moves 1% of a standard deviation or
more *and* more than adding as many real rows drawn at random moves it in
any of 20 draws (a group of 100 rows gaining two moves that much by chance).

Exit status 0 if there is no violation (new labels, out of range, sign flip,
moved zero, a whole-number column gaining fractions, invalid calendar/clock
value, changed group count, group mean shift of 1% of a standard deviation
or more), 1 otherwise.
"""

import argparse
import json
import sys

import numpy as np
import pandas as pd

CALENDAR = {
    "month": (1, 12),
    "day": (1, 31),
    "hour": (0, 23),
    "minute": (0, 59),
}
HHMM = {"dep_time", "arr_time", "sched_dep_time", "sched_arr_time"}
CATEGORY_TEXT_MAX = 1000
CATEGORY_INT_MAX = 60
MIN_GROUP = 100
MAX_MEAN_SHIFT = 0.01  # share of the measure's standard deviation
BASELINE_DRAWS = 20  # random real-row additions a pseudo-row copy is compared with


def numeric(s):
    return pd.to_numeric(s, errors="coerce")


def strip_marks(s):
    """Removes our invisible end marks, to tell a marked label from a new one."""
    return s.str.replace("[\u200b\u200c]", "", regex=True)


def invalid_calendar(name, values):
    """How many of a calendar or clock field's numbers no calendar or clock has."""
    v = values.dropna()
    if name in HHMM:
        return int((((v % 100) >= 60) | (v > 2400) | (v < 0)).sum())
    lo, hi = CALENDAR[name]
    return int(((v < lo) | (v > hi)).sum())


def kinds(x):
    """(numeric values, is numeric, whole numbers only, is a category) of a text column."""
    xn = numeric(x)
    is_num = xn.notna().sum() >= 0.9 * (x != "").sum() and (x != "").any()
    whole = is_num and bool(((xn.dropna() % 1) == 0).all())
    is_cat = (not is_num and x.nunique() <= CATEGORY_TEXT_MAX) or (
        is_num and whole and xn.nunique() <= CATEGORY_INT_MAX and x.name not in HHMM
    )
    return xn, is_num, whole, is_cat


def dates_of(x):
    """A text column's values as instants, if nearly all of them read as one; else None."""
    d = pd.to_datetime(x.where(x != ""), errors="coerce", utc=True, format="mixed")
    filled = (x != "").sum()
    return d if filled > 0 and d.notna().sum() >= 0.9 * filled else None


def added_rows(a, b, args):
    """A pseudo-row copy: every original row must be there unchanged, and
    the added rows must hold only what the columns can hold; the copy's
    group counts and means are compared with the original's."""
    extra = b.index.difference(a.index)
    real, added = b.loc[a.index, a.columns], b.loc[extra, a.columns]
    columns, categories, measures = {}, [], []
    for c in a.columns:
        x, y = a[c], added[c]
        xn, is_num, whole, is_cat = kinds(x)
        dates = None if is_num else dates_of(x)
        yn = numeric(y)
        info = {
            "real_cells_changed": int((real[c] != x).sum()),
            "added_values_not_in_column": int((~y.isin(set(x.unique()))).sum()),
            "empty_share": [round(float((x == "").mean()), 4), round(float((y == "").mean()), 4)],
        }
        if is_cat:
            categories.append(c)
            info["new_labels"] = int(len(set(y.unique()) - set(x.unique())))
        if is_num:
            if not is_cat:
                measures.append(c)
            info["out_of_range"] = int(((yn < xn.min()) | (yn > xn.max())).sum())
            info["not_numeric"] = int((yn.isna() & (y != "")).sum())
            if whole:
                info["whole_became_fraction"] = int((yn.notna() & ((yn % 1) != 0)).sum())
            if c in CALENDAR or c in HHMM:
                info["invalid_calendar"] = invalid_calendar(c, yn)
        if dates is not None:
            yd = pd.to_datetime(y.where(y != ""), errors="coerce", utc=True, format="mixed")
            info["invalid_dates"] = int((yd.isna() & (y != "")).sum())
            info["dates_out_of_range"] = int(((yd < dates.min()) | (yd > dates.max())).sum())
        columns[c] = info

    groupby = {}
    values = {m: numeric(a[m]) for m in measures}
    values = {m: (v, v.std()) for m, v in values.items() if v.std() and v.std() == v.std()}
    rng = np.random.default_rng(7)
    draws = [rng.integers(0, len(a), len(extra)) for _ in range(BASELINE_DRAWS)]
    for g in categories:
        counts_a, counts_b = a[g].value_counts(), b[g].value_counts()
        big = counts_a[counts_a >= MIN_GROUP].index
        growth = (counts_b.reindex(big) / counts_a.reindex(big) - 1).abs()
        worst = {"measure": None, "shift_of_std": 0.0}
        baseline = np.zeros(BASELINE_DRAWS)
        for m, (xa, sd) in values.items():
            ma = xa.groupby(a[g]).mean().reindex(big)
            mb = numeric(b[m]).groupby(b[g]).mean().reindex(big)
            shift = float(((mb - ma).abs() / sd).max())
            if shift > worst["shift_of_std"]:
                worst = {"measure": m, "shift_of_std": shift}
            # The same shift when as many real rows, drawn at random, are
            # added instead: what any rows of the table's kind do.
            sums = xa.groupby(a[g]).sum().reindex(big)
            filled = xa.notna().groupby(a[g]).sum().reindex(big)
            for i, rows in enumerate(draws):
                drawn = xa.iloc[rows]
                keys = a[g].iloc[rows].values
                ds = drawn.groupby(keys).sum().reindex(big, fill_value=0)
                dn = drawn.notna().groupby(keys).sum().reindex(big, fill_value=0)
                mr = (sums + ds) / (filled + dn)
                baseline[i] = max(baseline[i], float(((mr - ma).abs() / sd).max()))
        groupby[g] = {"groups": int(len(counts_a)), "groups_after": int(len(counts_b)),
                      "largest_count_growth": round(float(growth.max()), 4),
                      "worst_mean_shift": worst,
                      "real_rows_added_shift_max": float(baseline.max())}

    violations = []
    for c, i in columns.items():
        for k in ("real_cells_changed", "new_labels", "out_of_range", "not_numeric", "invalid_calendar",
                  "whole_became_fraction", "invalid_dates", "dates_out_of_range"):
            if i.get(k):
                violations.append(f"{c}: {k} {i[k]}")
    for g, r in groupby.items():
        if r["groups_after"] != r["groups"]:
            violations.append(f"group-by {g}: {r['groups']} groups became {r['groups_after']}")
        shift, chance = r["worst_mean_shift"]["shift_of_std"], r["real_rows_added_shift_max"]
        if shift >= max(MAX_MEAN_SHIFT, chance):
            violations.append(
                f"group-by {g}: mean of {r['worst_mean_shift']['measure']} moved "
                f"{100 * shift:.2f}% of its std (as many real rows added: at most {100 * chance:.2f}% "
                f"in {BASELINE_DRAWS} draws)")
    report = {"rows": len(a), "added_rows": len(extra), "columns": columns, "groupby": groupby,
              "violations": violations}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"{len(a)} rows kept, {len(extra)} added; categories: {', '.join(categories)}; "
          f"measures: {', '.join(measures)}")
    for c, i in columns.items():
        print(f"  {c}: {i}")
    for g, r in groupby.items():
        print(f"  group-by {g}: {r}")
    print(f"{len(violations)} violation(s)")
    for v in violations:
        print(f"  {v}")
    return 1 if violations else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("original")
    ap.add_argument("marked")
    ap.add_argument("--key", required=True, help="key column(s), comma-separated")
    ap.add_argument("--json", help="write the report as JSON here")
    args = ap.parse_args()
    key = args.key.split(",")
    a = pd.read_csv(args.original, dtype=str, keep_default_na=False)
    b = pd.read_csv(args.marked, dtype=str, keep_default_na=False)
    a = a.set_index(key).sort_index()
    b = b.set_index(key).sort_index()
    if not a.index.is_unique:
        sys.exit(f"the key {args.key} repeats in the original")
    if len(b) > len(a) and a.index.isin(b.index).all():
        return added_rows(a, b, args)
    if not a.index.equals(b.index):
        sys.exit("the two files do not hold the same keys")
    b = b[a.columns]

    columns = {}
    categories, measures = [], []
    for c in a.columns:
        x, y = a[c], b[c]
        (xn, is_num, whole, is_cat), yn = kinds(x), numeric(y)
        changed = int((x != y).sum())
        info = {"cells_changed": changed, "distinct_before": int(x.nunique()), "distinct_after": int(y.nunique())}
        if is_cat:
            categories.append(c)
            new = set(y.unique()) - set(x.unique())
            info["new_labels"] = len(new)
            info["new_label_cells"] = int(y.isin(new).sum())
            top = x.value_counts().index[:2].tolist()
            before, after = x.isin(top), y.isin(top)
            info["filter"] = {"labels": top, "rows_before": int(before.sum()), "rows_after": int(after.sum()),
                              "rows_lost": int((before & ~after).sum())}
        if is_num:
            if not is_cat:
                measures.append(c)
            both = xn.notna() & yn.notna()
            lo, hi = xn.min(), xn.max()
            info["out_of_range"] = int(((yn < lo) | (yn > hi)).sum())
            info["sign_flips"] = int((both & (xn * yn < 0)).sum())
            info["zeros_moved"] = int((both & (xn == 0) & (yn != 0)).sum())
            if whole:
                info["whole_became_fraction"] = int((both & ((yn % 1) != 0)).sum())
            if c in CALENDAR or c in HHMM:
                info["invalid_calendar"] = invalid_calendar(c, yn)
            if c == "year":
                info["invalid_calendar"] = int((yn != xn).sum())
            info["mean_before"], info["mean_after"] = float(xn.mean()), float(yn.mean())
            info["std_before"], info["std_after"] = float(xn.std()), float(yn.std())
        columns[c] = info

    groupby = {}
    for g in categories:
        worst = {"measure": None, "shift_of_std": 0.0}
        counts_a = a[g].value_counts()
        counts_b = b[g].value_counts()
        counts_same = counts_a.reindex(counts_b.index).equals(counts_b) and len(counts_a) == len(counts_b)
        big = counts_a[counts_a >= MIN_GROUP].index
        for m in measures:
            xa, xb = numeric(a[m]), numeric(b[m])
            sd = xa.std()
            if not sd or sd != sd:
                continue
            ma = xa.groupby(a[g]).mean().reindex(big)
            mb = xb.groupby(a[g]).mean().reindex(big)  # the original's groups
            shift = float(((mb - ma).abs() / sd).max())
            if shift > worst["shift_of_std"]:
                worst = {"measure": m, "shift_of_std": shift}
        groupby[g] = {"groups": int(len(counts_a)), "groups_after": int(len(counts_b)),
                      "counts_unchanged": bool(counts_same), "worst_mean_shift": worst}

    violations = []
    for c, i in columns.items():
        for k in ("new_labels", "out_of_range", "sign_flips", "zeros_moved", "invalid_calendar",
                  "whole_became_fraction"):
            if i.get(k):
                violations.append(f"{c}: {k} {i[k]}")
    for g, r in groupby.items():
        if not r["counts_unchanged"]:
            violations.append(f"group-by {g}: {r['groups']} groups became {r['groups_after']} or counts changed")
        if r["worst_mean_shift"]["shift_of_std"] >= MAX_MEAN_SHIFT:
            violations.append(
                f"group-by {g}: mean of {r['worst_mean_shift']['measure']} moved "
                f"{100 * r['worst_mean_shift']['shift_of_std']:.2f}% of its std")

    report = {"rows": len(a), "columns": columns, "groupby": groupby, "violations": violations}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"{len(a)} rows; categories: {', '.join(categories)}; measures: {', '.join(measures)}")
    for c, i in columns.items():
        extra = {k: v for k, v in i.items() if k not in ("mean_before", "mean_after", "std_before", "std_after")}
        print(f"  {c}: {extra}")
    print(f"{len(violations)} violation(s)")
    for v in violations:
        print(f"  {v}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
