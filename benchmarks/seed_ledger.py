"""Writes N ledger entries recorded during one UTC day straight into a Tollgate SQLite
state file (schema made by Tollgate itself), as the Firestore REST JSON the fake stores,
and the same records as NDJSON for the baseline. For benchmarks only."""
import json, sqlite3, sys, datetime as dt

path, count, day, ndjson = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
start = dt.datetime.fromisoformat(day + "T00:00:00+00:00")
db = sqlite3.connect(path)
rows = []
with open(ndjson, "w") as plain:
    for i in range(count):
        t = start + dt.timedelta(microseconds=i * 86_400_000_000 // count)
        ts = t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}" if t.microsecond else "") + "Z"
        request, account, units = f"req_{i:09d}", f"acct_{i % 500}", i % 7 + 1
        fields = {"requestId": {"stringValue": request}, "accountId": {"stringValue": account}, "keyId": {"stringValue": "tg_live_AbCd"},
                  "time": {"timestampValue": ts}, "recorded": {"timestampValue": ts}, "endpoint": {"stringValue": "/v1/graphs"},
                  "units": {"integerValue": str(units)}, "nodes": {"integerValue": "40"}, "nodeDimensionUnits": {"integerValue": "120"}}
        rows.append(("usage", request, json.dumps(fields, separators=(",", ":")), 0, 0))
        plain.write(json.dumps({"accountId": account, "endpoint": "/v1/graphs", "keyId": "tg_live_AbCd", "nodeDimensionUnits": 120, "nodes": 40,
                                "recorded": ts, "requestId": request, "time": ts, "units": units}, separators=(",", ":"), sort_keys=True) + "\n")
        if len(rows) == 50_000:
            db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)", rows)
            rows.clear()
    db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)", rows)
db.commit()
db.close()
