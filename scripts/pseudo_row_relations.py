#!/usr/bin/env python3
"""Do a pseudo-row copy's fabricated rows keep the rules real rows obey?

    python3 scripts/pseudo_row_relations.py flights ORIGINAL.csv COPY.csv
    python3 scripts/pseudo_row_relations.py lineitem ORIGINAL.csv COPY.csv

The fabricated rows are those whose key is not in the original (flights:
carrier, flight, time_hour; lineitem: l_orderkey, l_linenumber). For each
rule of the table, written by hand from what the data means (not found by
dbwm), it prints the share of real and of fabricated rows breaking it.
Exit status 0 if no fabricated row breaks a rule no real row breaks, 1
otherwise (lineitem's unit price per part and return flag are known to
break: see the README).
"""

import sys

import pandas as pd


def minutes(hhmm):
    return (hhmm // 100) * 60 + hhmm % 100


def determined(orig, d, by, of):
    """Rows of d whose `of` differs from the original's most common value
    for their `by` (rows whose `by` the original never holds break nothing)."""
    common = orig.groupby(by)[of].agg(lambda s: s.mode().iloc[0]).rename("_m")
    j = d.join(common, on=by)
    return j["_m"].notna() & (j["_m"] != j[of])


def flights(orig, d):
    rules = {"hour*100 + minute == sched_dep_time": d.hour * 100 + d.minute != d.sched_dep_time}
    for at, sched, delay in [
        ("dep_time", "sched_dep_time", "dep_delay"),
        ("arr_time", "sched_arr_time", "arr_delay"),
    ]:
        both = d[at].notna() & d[delay].notna()
        off = (minutes(d[at]) - minutes(d[sched]) - d[delay]) % 1440
        rules[f"{delay} == {at} - {sched} (clock)"] = both & (off != 0)
    rules["air_time <= distance"] = d.air_time > d.distance
    speed = d.distance / d.air_time * 60
    rules["a speed of 150 to 700 mph"] = d.air_time.notna() & ((speed < 150) | (speed > 700))
    route = orig.groupby(["origin", "dest"]).air_time.quantile([0.01, 0.99]).unstack()
    j = d.join(route, on=["origin", "dest"])
    rules["air_time within its route's 1st..99th percentile"] = (
        d.air_time.notna() & j[0.01].notna() & ((j.air_time < j[0.01]) | (j.air_time > j[0.99]))
    )
    flown = set(map(tuple, orig[["carrier", "origin", "dest"]].drop_duplicates().values))
    rules["carrier flies the route"] = ~pd.Series(
        list(map(tuple, d[["carrier", "origin", "dest"]].values)), index=d.index
    ).isin(flown)
    for by, of in [
        (["time_hour"], "month"),
        (["time_hour"], "day"),
        (["time_hour"], "hour"),
        (["origin", "dest"], "distance"),
        (["tailnum"], "carrier"),
        (["carrier", "flight"], "origin"),
    ]:
        rules[f"{','.join(by)} -> {of}"] = determined(orig, d, by, of)
    return rules


def lineitem(orig, d):
    ship, receipt = pd.to_datetime(d.l_shipdate), pd.to_datetime(d.l_receiptdate)
    commit = pd.to_datetime(d.l_commitdate)
    unit = (d.l_extendedprice / d.l_quantity).round(2)
    part_unit = (orig.l_extendedprice / orig.l_quantity).round(2).groupby(orig.l_partkey).agg(
        lambda s: s.mode().iloc[0]
    )
    expected = d.l_partkey.map(part_unit)
    return {
        "l_shipdate < l_receiptdate": ship >= receipt,
        "receipt at most 30 days after ship": (receipt - ship).dt.days > 30,
        "commit within 90 days of ship": (ship - commit).abs().dt.days > 90,
        "l_linestatus O iff shipped after 1995-06-17": (d.l_linestatus == "O")
        != (d.l_shipdate > "1995-06-17"),
        "l_returnflag N iff received after 1995-06-17": (d.l_returnflag == "N")
        != (d.l_receiptdate > "1995-06-17"),
        "one unit price per part": expected.notna() & ((expected - unit).abs() > 0.011),
        "unit price within the table's": (unit < (orig.l_extendedprice / orig.l_quantity).min() - 0.005)
        | (unit > (orig.l_extendedprice / orig.l_quantity).max() + 0.005),
    }


TABLES = {
    "flights": (["carrier", "flight", "time_hour"], flights),
    "lineitem": (["l_orderkey", "l_linenumber"], lineitem),
}


def main():
    table, original, copy = sys.argv[1:4]
    key, rules_of = TABLES[table]
    orig, cp = pd.read_csv(original), pd.read_csv(copy)

    def keys(d):
        return d[key].astype(str).agg("|".join, axis=1)

    fabricated = cp[~keys(cp).isin(set(keys(orig)))]
    print(f"{len(fabricated)} fabricated rows of {len(cp)}")
    real, fab = rules_of(orig, orig), rules_of(orig, fabricated)
    violations = 0
    for name, bad in real.items():
        r, f = bad.mean(), fab[name].mean() if len(fabricated) else 0.0
        flag = f > 0 and r == 0
        violations += flag
        print(f"{name:50s} real {r:8.4%}  fabricated {f:8.4%}{'  <-' if flag else ''}")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
