"""Point-in-time training sets on Spark, over Mercator's offline store.

The same join as `mercator features history` (feature-store/src/pit), written as Spark
SQL from the feature definitions and run where the data is: for each entity row, each
view's latest event of the entity at or before the row's time (ties: the later write),
null when that event is older than the view's TTL at the row's time, or when there is
none. It reads the offline layout as it is (`<root>/view=<view>/date=<day>/*.parquet`,
and the flat `<root>/<view>/*.parquet` of older stores). A compacted file may sit beside
the files it replaces for a while; their rows are identical, so the latest row per
entity row is the same whichever copy is picked.

From Python, with your own session:

    from mercator.training import historical_features
    defs = json.loads(subprocess.check_output(["mercator", "features", "list", "--json"]))
    train = historical_features(spark, "s3a://bucket/features", defs, entities_df,
                                ["customer_churn:orders_90d", "customer_churn:last_nps"])

`mercator features history --engine spark --spark-master URL` runs this file as a
script (it needs only pyspark). Rows of one write call with the same key and event time
are the one case where Spark may pick a different (equally timed) row than Mercator.
"""

import argparse
import json
import sys

ROW = "__mercator_row"


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _plan(definitions: dict, features: list) -> list:
    """[(view, join keys, ttl seconds or None, [fields])] in the order first named."""
    views = {v["name"]: v for v in definitions["feature_views"]}
    entities = {e["name"]: e for e in definitions["entities"]}
    plan, keys = [], None
    for i, feature in enumerate(features):
        view, _, field = feature.partition(":")
        if view not in views:
            raise ValueError(f"features[{i}]: no feature view '{view}'")
        v = views[view]
        if field not in {f["name"] for f in v["fields"]}:
            raise ValueError(f"features[{i}]: view '{view}' has no field '{field}'")
        join_keys = entities[v["entity"]]["join_keys"]
        if keys is not None and join_keys != keys:
            raise ValueError(f"features[{i}]: '{feature}' is keyed by {join_keys}, earlier features by {keys}")
        keys = join_keys
        for entry in plan:
            if entry[0] == view:
                entry[3].append(field)
                break
        else:
            plan.append((view, join_keys, v.get("ttl_seconds"), [field]))
    if not plan:
        raise ValueError("features: name at least one feature")
    return plan


def point_in_time_sql(definitions: dict, features: list, entities: str = "entities",
                      history: str = "history_{view}") -> str:
    """The point-in-time join as one Spark SQL query: `entities` (the entity rows, with
    a unique `__mercator_row` column) and one table per view (`history_{view}`: the
    view's offline rows), giving every entity column and one column per feature,
    `view__field`, in the entity rows' order."""
    plan = _plan(definitions, features)
    parts, selects = [], []
    for n, (view, keys, ttl, fields) in enumerate(plan):
        on = " AND ".join(f"CAST(h.{_quote(k)} AS STRING) = CAST(e.{_quote(k)} AS STRING)" for k in keys)
        window = "h.event_timestamp <= e.event_timestamp"
        if ttl:
            window += f" AND h.event_timestamp >= e.event_timestamp - INTERVAL {int(ttl)} SECONDS"
        columns = ", ".join(f"h.{_quote(f)} AS {_quote(f'{view}__{f}')}" for f in fields)
        parts.append(f"""v{n} AS (
  SELECT {ROW}, {", ".join(_quote(f"{view}__{f}") for f in fields)} FROM (
    SELECT e.{ROW}, {columns},
      ROW_NUMBER() OVER (PARTITION BY e.{ROW}
                         ORDER BY h.event_timestamp DESC, h.created_timestamp DESC) AS __rank
    FROM {entities} e JOIN {_quote(history.format(view=view))} h
      ON {on} AND {window}
  ) WHERE __rank = 1
)""")
    by_feature = {}
    for n, (view, _, _, fields) in enumerate(plan):
        for f in fields:
            by_feature[f"{view}:{f}"] = f"v{n}.{_quote(f'{view}__{f}')}"
    selects = [by_feature[f] for f in features]
    joins = "\n".join(f"LEFT JOIN v{n} ON v{n}.{ROW} = e.{ROW}" for n in range(len(plan)))
    return (f"WITH {', '.join(parts)}\nSELECT e.*, {', '.join(selects)}\nFROM {entities} e\n"
            f"{joins}\nORDER BY e.{ROW}")


def read_history(spark, offline_root: str, view: str):
    """A view's offline rows: the partitioned layout and the old flat one, unioned by
    column name (fields a file predates are null; the `date` partition column dropped)."""
    from pyspark.errors import AnalysisException

    frames = []
    for path, partitioned in ((f"{offline_root.rstrip('/')}/view={view}", True),
                              (f"{offline_root.rstrip('/')}/{view}", False)):
        reader = spark.read.option("mergeSchema", "true")
        if partitioned:
            reader = reader.option("basePath", path)
        try:
            frame = reader.parquet(path)
        except AnalysisException as e:  # the folder does not exist
            if "PATH_NOT_FOUND" in str(e) or "does not exist" in str(e):
                continue
            raise
        frames.append(frame.drop("date") if partitioned else frame)
    if not frames:
        return None
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f, allowMissingColumns=True)
    return out


def historical_features(spark, offline_root: str, definitions: dict, entities, features: list):
    """The training set as a Spark DataFrame: `entities`' columns (it needs the join keys
    and `event_timestamp`), then each feature as `view__field`, in the entity rows'
    order. `definitions` is what `mercator features list --json` prints."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    plan = _plan(definitions, features)
    for column in [*plan[0][1], "event_timestamp"]:
        if column not in entities.columns:
            raise ValueError(f"entities: no '{column}' column")
    rows = entities.withColumn(ROW, F.monotonically_increasing_id()).withColumn(
        "event_timestamp", F.col("event_timestamp").cast("timestamp"))
    rows.createOrReplaceTempView("entities")
    types = {v["name"]: {f["name"]: f["type"] for f in v["fields"]} for v in definitions["feature_views"]}
    spark_types = {"float32": T.FloatType(), "float64": T.DoubleType(), "int64": T.LongType(),
                   "bool": T.BooleanType(), "string": T.StringType(), "date": T.StringType(),
                   "float32_list": T.ArrayType(T.FloatType())}
    for view, keys, _, fields in plan:
        history = read_history(spark, offline_root, view)
        if history is None:  # nothing written yet: an empty table of the right columns
            schema = T.StructType(
                [T.StructField(k, T.StringType()) for k in keys]
                + [T.StructField("event_timestamp", T.TimestampType()),
                   T.StructField("created_timestamp", T.TimestampType())]
                + [T.StructField(f, spark_types.get(types[view][f], T.StringType())) for f in fields])
            history = spark.createDataFrame([], schema)
        for f in fields:
            if f not in history.columns:
                history = history.withColumn(f, F.lit(None).cast(spark_types.get(types[view][f], T.StringType())))
        history.createOrReplaceTempView(f"history_{view}")
    return spark.sql(point_in_time_sql(definitions, features)).drop(ROW)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Build a point-in-time training set on Spark.")
    p.add_argument("--master", required=True, help="spark://host:port, local[N], yarn, k8s://…")
    p.add_argument("--offline", required=True, help="the offline store's root (path or s3a:// URL)")
    p.add_argument("--definitions", required=True, help="a file with `mercator features list --json`")
    p.add_argument("--features", required=True, help="view:field, comma-separated")
    p.add_argument("--entities", required=True, help="CSV or Parquet: join keys, event_timestamp, …")
    p.add_argument("--output", required=True, help="a folder of Parquet part files")
    p.add_argument("--conf", action="append", default=[], help="key=value Spark settings")
    a = p.parse_args(argv)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print("error: the spark engine needs pyspark where it runs: pip install pyspark", file=sys.stderr)
        return 2
    with open(a.definitions) as f:
        definitions = json.load(f)
    features = [f for f in a.features.split(",") if f]
    builder = SparkSession.builder.master(a.master).appName("mercator-features-history")
    for kv in a.conf:
        key, _, value = kv.partition("=")
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        if a.entities.lower().endswith((".parquet", ".pq")):
            entities = spark.read.parquet(a.entities)
        else:
            # Every CSV column as text but the time: a key `00123` stays `00123`.
            entities = spark.read.option("header", "true").csv(a.entities)
        train = historical_features(spark, a.offline, definitions, entities, features)
        train.write.mode("overwrite").parquet(a.output)
        rows = spark.read.parquet(a.output).count()
        print(json.dumps({"output": a.output, "rows": rows, "features": len(features),
                          "engine": "spark", "master": a.master}))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
