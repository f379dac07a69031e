"""Generates the demo's daily sales per SKU and location, for the demand forecasters.

    python make_sales.py      # writes sales.csv: sku_id,location_id,date,units,on_promo,stocked_out

200 SKU-locations (50 SKUs × 4 stores) over 365 days from 2025-11-01: a base level per
SKU and store, a slow trend, a weekly cycle (weekends sell more, by a SKU-specific
amount), a yearly swell around December, promotions (a few per series, 3-7 days, lifting
sales 30-120%), stock-outs (a few per series, 1-6 days, sales 0 and flagged), and
Poisson noise. Units are whole and never negative.
"""

import csv
import datetime as dt
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(42)
START = dt.date(2025, 11, 1)
DAYS = 365
STORES = ["berlin", "lyon", "madrid", "leeds"]


def poisson(lam):
    # Knuth for small means, normal approximation for large ones.
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


rows = []
for s in range(50):
    sku = f"SKU{s:03d}"
    sku_level = rng.uniform(2, 40)
    weekend_lift = rng.uniform(0.05, 0.6)
    trend = rng.uniform(-0.3, 0.6) / DAYS
    for store in STORES:
        level = sku_level * rng.uniform(0.5, 1.5)
        promos = set()
        for _ in range(rng.randint(2, 5)):
            start = rng.randrange(DAYS)
            lift = rng.uniform(0.3, 1.2)
            promos.update((d, lift) for d in range(start, min(DAYS, start + rng.randint(3, 7))))
        promo = dict(promos)
        outs = set()
        for _ in range(rng.randint(0, 4)):
            start = rng.randrange(DAYS)
            outs.update(range(start, min(DAYS, start + rng.randint(1, 6))))
        for d in range(DAYS):
            date = START + dt.timedelta(days=d)
            weekly = 1 + (weekend_lift if date.weekday() >= 5 else 0) - weekend_lift * 2 / 7
            gap = abs(date.timetuple().tm_yday - 350)
            yearly = 1 + 0.25 * math.exp(-min(gap, 365 - gap) ** 2 / 400)  # mid-December peak
            mean = level * (1 + trend * d) * weekly * yearly * (1 + promo.get(d, 0.0))
            out = d in outs
            units = 0 if out else poisson(max(mean, 0.0))
            rows.append((sku, store, date.isoformat(), units, int(d in promo), int(out)))

with open(os.path.join(HERE, "sales.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["sku_id", "location_id", "date", "units", "on_promo", "stocked_out"])
    w.writerows(rows)
print(len(rows), "rows")
