"""Appends ROWS token-issuance rows of realistic size to the audit log of a SQLite database
(bench/export.sh). Their hashes are random: the rows are for exports, not for `verify`."""
import datetime, json, os, sqlite3, sys, uuid

database, rows = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(database)
(head,) = db.execute("SELECT last_index FROM audit_chain_head").fetchone() or (0,)
start = datetime.datetime(2026, 11, 1)
agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def generated():
    for i in range(rows):
        yield (
            str(uuid.uuid4()),
            (start + datetime.timedelta(seconds=2 * i)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "token.issued",
            None,
            str(uuid.UUID(int=i % 5000)),
            "portal",
            f"203.0.113.{i % 250}",
            agent,
            str(uuid.uuid4()),
            json.dumps({"jti": str(uuid.uuid4()), "kind": "access", "scope": "openid email"}),
            head + 1 + i,
            os.urandom(32),
            os.urandom(32),
        )


db.executemany(
    "INSERT INTO audit_events (id, occurred_at, event_type, actor, subject, client_id, ip,"
    " user_agent, request_id, detail, chain_index, prev_hash, row_hash)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    generated(),
)
db.execute("UPDATE audit_chain_head SET last_index = ?", (head + rows,))
db.commit()
print(f"seeded {rows} audit rows")
