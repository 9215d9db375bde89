"""How well the pair detectors of `dbwm eval` find the fabricated rows of a
pseudo-row copy made through the CLI (a quick mirror, for tuning on real
tables without the eval's single whole-table batch):

    python3 -m pip install pandas numpy
    dbwm embed flights.csv --pk carrier,flight,time_hour --mode pseudo-rows -o copy.csv
    python3 scripts/pseudo_row_detect.py flights.csv copy.csv carrier,flight,time_hour

The fabricated rows are those whose key the original does not hold. As in
`src/eval/pseudo.rs`, the detectors look at the first 12 non-key columns:
*near duplicates* counts the row's pairs of exact values that another row
holds; *associations* is minus the mean pointwise mutual information of its
pairs (numbers of more than 64 distinct values in 16 quantile bins). Each
AUC is printed in the better direction with the mean scores (which side the
fabricated rows are on), then the pairs of columns whose share of rows held
by another row differs most between real and fabricated rows: the places
where fabricated rows still differ.
"""

import sys

import numpy as np
import pandas as pd


def auc(score, positive):
    ranks = pd.Series(score).rank(method="average").to_numpy()
    p = positive.sum()
    n = len(score) - p
    a = (ranks[positive].sum() - p * (p + 1) / 2) / (p * n)
    return max(a, 1 - a)


def binned(column):
    present = column != ""
    values = pd.to_numeric(column.where(present), errors="coerce")
    if values.notna().sum() == present.sum() and column[present].nunique() > 64:
        edges = np.nanquantile(values, np.arange(1, 16) / 16)
        return np.searchsorted(edges, values.to_numpy(), side="right").astype(np.int64)
    return pd.factorize(column)[0].astype(np.int64)


def main(original, copy, key):
    original = pd.read_csv(original, dtype=str, keep_default_na=False)
    copy = pd.read_csv(copy, dtype=str, keep_default_na=False)
    real_keys = set(map(tuple, original[key].to_numpy()))
    fabricated = np.array([tuple(k) not in real_keys for k in copy[key].to_numpy()])
    print(f"{len(copy)} rows, {fabricated.sum()} fabricated")
    columns = [c for c in copy.columns if c not in key][:12]
    exact = {c: pd.factorize(copy[c])[0].astype(np.int64) for c in columns}
    bins = {c: binned(copy[c]) for c in columns}
    null = {c: (copy[c] == "").to_numpy() for c in columns}
    rows = len(copy)
    pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1:]]
    near = np.zeros(rows)
    assoc = np.zeros(rows)
    differ = []
    for a, b in pairs:
        valid = ~(null[a] | null[b])
        held = np.zeros(rows)
        joint = pd.Series(exact[a][valid] * 1_000_003 + exact[b][valid])
        held[valid] = joint.map(joint.value_counts()).to_numpy() >= 2
        near += held
        differ.append((held[fabricated].mean() - held[~fabricated].mean(), a, b,
                       held[~fabricated].mean(), held[fabricated].mean()))
        x, y = pd.Series(bins[a][valid]), pd.Series(bins[b][valid])
        xy = pd.Series(bins[a][valid] * 1_000_003 + bins[b][valid])
        pmi = np.log(xy.map(xy.value_counts()).to_numpy() * rows
                     / (x.map(x.value_counts()).to_numpy() * y.map(y.value_counts()).to_numpy()))
        assoc[valid] -= pmi / len(pairs)
    for name, score in [("near duplicates", near), ("associations", assoc)]:
        print(f"{name:>16}: AUC {auc(score, fabricated):.3f} "
              f"(mean real {score[~fabricated].mean():.3f}, fabricated {score[fabricated].mean():.3f})")
    differ.sort()
    print("pairs held by another row, real against fabricated, most apart:")
    for _, a, b, real, fake in differ[:4] + differ[-4:]:
        print(f"  {a:>16} x {b:<16} {real:.3f} {fake:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))
