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

Exit status 0 if there is no violation (new labels, out of range, sign flip,
moved zero, a whole-number column gaining fractions, invalid calendar/clock
value, changed group count, group mean shift of 1% of a standard deviation
or more), 1 otherwise.
"""

import argparse
import json
import sys

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


def numeric(s):
    return pd.to_numeric(s, errors="coerce")


def strip_marks(s):
    """Removes our invisible end marks, to tell a marked label from a new one."""
    return s.str.replace("[\u200b\u200c]", "", regex=True)


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
    if not a.index.equals(b.index):
        sys.exit("the two files do not hold the same keys")
    b = b[a.columns]

    columns = {}
    categories, measures = [], []
    for c in a.columns:
        x, y = a[c], b[c]
        xn, yn = numeric(x), numeric(y)
        is_num = xn.notna().sum() >= 0.9 * (x != "").sum() and (x != "").any()
        changed = int((x != y).sum())
        info = {"cells_changed": changed, "distinct_before": int(x.nunique()), "distinct_after": int(y.nunique())}
        whole = is_num and bool(((xn.dropna() % 1) == 0).all())
        is_cat = (not is_num and x.nunique() <= CATEGORY_TEXT_MAX) or (
            is_num and whole and xn.nunique() <= CATEGORY_INT_MAX and c not in HHMM
        )
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
            if c in CALENDAR:
                lo_c, hi_c = CALENDAR[c]
                info["invalid_calendar"] = int((yn.notna() & ((yn < lo_c) | (yn > hi_c))).sum())
            if c in HHMM:
                v = yn.dropna()
                info["invalid_calendar"] = int((((v % 100) >= 60) | (v > 2400) | (v < 0)).sum())
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
