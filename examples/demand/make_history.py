"""Writes the demo's feature rows of recent sales: for each SKU-location the last
DAYS days of sales.csv as one list, and the date of its last value.

    python make_history.py     # writes history.csv: sku_id,location_id,units,last_date

`mercator serve --demo` loads it into the `daily_sales` view (features.toml), where the
forecasters read each series' history. The days after the models' training end (the
held-out tail) are included: the ETS bundle filters them before forecasting, the neural
forecaster reads the last 56 days, so both forecast from the end of the data.
"""

import csv
import os

from common import HERE, load_series

DAYS = 112

series, dates = load_series()
with open(os.path.join(HERE, "history.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["sku_id", "location_id", "units", "last_date"])
    for (sku, loc), y in series.items():
        w.writerow([sku, loc, ";".join(str(int(v)) for v in y[-DAYS:]), dates[-1].isoformat()])
print(len(series), "series up to", dates[-1])
