"""The three peers: DuckDB (python), ClickHouse as chDB (python), PostgreSQL 15 (a temporary server).

Each engine: `load(prepared)` -> {"load_s", "rows_per_s", steps...}; `size()` -> {...bytes...};
`query(sql)` -> list of tuples; `version()`; `close()` (always safe to call twice).
The catalog tables are loaded from the parsed rows (not timed as part of the usage load); the usage
rows from the same plain CSV files for every engine, and that is what `load_s` times.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from .dump import DIM_SCHEMA, USAGE, Prepared

PG_BIN = "/usr/lib/postgresql/15/bin"
THREADS = 2  # the machine's cores; Tally serves with --threads 2 too

SQL_TYPES = {"uuid": "UUID", "text": "VARCHAR", "bool": "BOOLEAN", "int": "INTEGER"}
CH_TYPES = {"uuid": "UUID", "text": "String", "bool": "Bool", "int": "Int64"}
# columns that may be NULL in the catalog tables (SPEC §1 marks them with ?)
NULLABLE = {("clients", "timezone"), ("clients", "licensed_seats"), ("catalog_applications", "logo"),
            ("catalog_applications", "category_id"), ("catalog_applications", "vendor_id"),
            ("departments", "description"), ("users", "display_name"), ("users", "role")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class DuckDB:
    name = "duckdb"

    def __init__(self, workdir: str, sort: bool = True):
        import duckdb
        self.dir = os.path.join(workdir, "duckdb")
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, "tally.duckdb")
        self.con = duckdb.connect(self.path)
        self.con.execute(f"SET threads = {THREADS}")
        self.con.execute("SET memory_limit = '8GB'")
        self.con.execute(f"SET temp_directory = '{self.dir}/tmp'")
        self.sort = sort

    def version(self):
        return self.con.execute("SELECT version()").fetchone()[0]

    def load(self, p: Prepared) -> dict:
        import pandas as pd
        for t, schema in DIM_SCHEMA.items():
            cols = ", ".join(f"{c} {SQL_TYPES[k]}" for c, k in schema)
            self.con.execute(f"CREATE TABLE {t} ({cols})")
            rows = [tuple(None if v is None else (str(v).lower() if isinstance(v, bool) else str(v)) for v in r)
                    for r in p.dims[t]]
            if rows:
                df = pd.DataFrame(rows, columns=[c for c, _ in schema], dtype=object)
                self.con.register("dim_df", df)
                self.con.execute(f"INSERT INTO {t} SELECT * FROM dim_df")
                self.con.unregister("dim_df")
        files = "[" + ", ".join(f"'{f}'" for f in p.usage_files) + "]"
        cols = ("{'client_id': 'UUID', 'user_id': 'UUID', 'application_id': 'UUID', 'activity_date': 'DATE'}")
        t0 = time.perf_counter()
        self.con.execute(f"CREATE TABLE {USAGE} AS SELECT * FROM read_csv({files}, header = true, delim = ',',"
                         f" quote = '\"', columns = {cols})")
        load_s = time.perf_counter() - t0
        out = {"load_s": load_s, "rows_per_s": p.usage_rows / load_s,
               "how": "CREATE TABLE AS SELECT * FROM read_csv(files, columns = typed)"}
        if self.sort:
            t0 = time.perf_counter()
            self.con.execute(f"CREATE TABLE usage_sorted AS SELECT * FROM {USAGE} ORDER BY client_id, activity_date")
            self.con.execute(f"DROP TABLE {USAGE}")
            self.con.execute(f"ALTER TABLE usage_sorted RENAME TO {USAGE}")
            out["sort_s"] = time.perf_counter() - t0
            out["how"] += "; then re-written ORDER BY client_id, activity_date (zone maps), timed as sort_s"
        t0 = time.perf_counter()
        self.con.execute("CHECKPOINT")
        out["checkpoint_s"] = time.perf_counter() - t0
        return out

    def size(self) -> dict:
        self.con.execute("CHECKPOINT")
        b = os.path.getsize(self.path)
        wal = self.path + ".wal"
        if os.path.exists(wal):
            b += os.path.getsize(wal)
        return {"bytes": b, "what": "database file after CHECKPOINT (all tables)"}

    def query(self, sql: str):
        return self.con.execute(sql).fetchall()

    def close(self):
        if self.con is not None:
            self.con.close()
            self.con = None


class ChDB:
    name = "chdb"

    def __init__(self, workdir: str):
        from chdb import session
        self.dir = os.path.join(workdir, "chdb")
        os.makedirs(self.dir, exist_ok=True)
        self.s = session.Session(self.dir)
        self.s.query("CREATE DATABASE IF NOT EXISTS tally ENGINE = Atomic")
        self.s.query("USE tally")
        for k, v in {"max_threads": THREADS, "join_use_nulls": 1,
                     "output_format_json_quote_64bit_integers": 0}.items():
            self.s.query(f"SET {k} = {v}")

    def _q(self, sql: str, fmt="JSONCompact"):
        r = self.s.query(sql, fmt)
        if hasattr(r, "has_error") and r.has_error():
            raise RuntimeError(r.error_message())
        return r

    def version(self):
        return self.query("SELECT version()")[0][0]

    def load(self, p: Prepared) -> dict:
        for t, schema in DIM_SCHEMA.items():
            cols = []
            for c, k in schema:
                typ = CH_TYPES[k]
                cols.append(f"{c} {'Nullable(' + typ + ')' if (t, c) in NULLABLE else typ}")
            self._q(f"CREATE TABLE {t} ({', '.join(cols)}) ENGINE = MergeTree ORDER BY tuple()")
            if p.dims[t]:
                path = os.path.join(self.dir, f"{t}.jsonl")
                with open(path, "w", encoding="utf-8") as f:
                    for r in p.dims[t]:
                        f.write(json.dumps({c: v for (c, _), v in zip(schema, r)}) + "\n")
                self._q(f"INSERT INTO {t} SELECT * FROM file('{path}', 'JSONEachRow', '{', '.join(cols)}')")
        self._q(f"CREATE TABLE {USAGE} (client_id UUID, user_id UUID, application_id UUID, activity_date Date)"
                " ENGINE = MergeTree ORDER BY (client_id, activity_date, application_id, user_id)")
        glob = os.path.join(os.path.dirname(p.usage_files[0]), "*.csv")
        t0 = time.perf_counter()
        self._q(f"INSERT INTO {USAGE} SELECT * FROM file('{glob}', 'CSVWithNames',"
                " 'client_id UUID, user_id UUID, application_id UUID, activity_date Date')")
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._q(f"OPTIMIZE TABLE {USAGE} FINAL")
        return {"load_s": load_s, "rows_per_s": p.usage_rows / load_s, "optimize_s": time.perf_counter() - t0,
                "how": "INSERT INTO MergeTree ORDER BY (client_id, activity_date, application_id, user_id)"
                       " SELECT * FROM file(glob, CSVWithNames); then OPTIMIZE FINAL (timed as optimize_s)"}

    def size(self) -> dict:
        r = self.query(f"SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes), sum(bytes_on_disk),"
                       f" count() FROM system.parts WHERE active AND database = 'tally' AND table = '{USAGE}'")[0]
        return {"bytes": int(r[0]), "uncompressed_bytes": int(r[1]), "bytes_on_disk": int(r[2]),
                "parts": int(r[3]), "what": "system.parts data_compressed_bytes of the usage table"}

    def query(self, sql: str):
        r = self._q(sql)
        return [tuple(x) for x in json.loads(r.bytes() if hasattr(r, "bytes") else str(r))["data"]]

    def close(self):
        if self.s is not None:
            try:
                self.s.close()
            except Exception:
                pass
            self.s = None


PG_SETTINGS = {
    # a 24 GiB, 2-core machine; sized the way a DBA would for an analytics replica
    "shared_buffers": "4GB", "work_mem": "256MB", "maintenance_work_mem": "2GB",
    "effective_cache_size": "16GB", "max_worker_processes": "4", "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "2", "max_parallel_maintenance_workers": "2",
    "random_page_cost": "1.1", "effective_io_concurrency": "200", "jit": "off",
    "wal_level": "minimal", "max_wal_senders": "0", "max_wal_size": "16GB", "checkpoint_timeout": "30min",
    "listen_addresses": "'127.0.0.1'", "autovacuum": "on", "logging_collector": "off",
}


class Postgres:
    name = "postgres"

    def __init__(self, workdir: str, log=print):
        import psycopg2
        self.proc_started = False
        self.dir = os.path.join(workdir, "pg")
        os.makedirs(self.dir, exist_ok=True)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(workdir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.log = log
        self._as_pg([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--locale=C",
                     "--encoding=UTF8"], quiet=True)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# tools/peers\n")
            for k, v in PG_SETTINGS.items():
                f.write(f"{k} = {v}\n")
            f.write(f"port = {self.port}\nunix_socket_directories = '{self.dir}'\n")
        self._as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"),
                     "-w", "-t", "60", "start"], quiet=True)
        self.proc_started = True
        self.con = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        self.con.autocommit = True
        self.cur = self.con.cursor()

    def _as_pg(self, cmd, quiet=False):
        r = subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")

    def version(self):
        return self.query("SELECT version()")[0][0]

    def load(self, p: Prepared) -> dict:
        from psycopg2.extras import execute_values
        for t, schema in DIM_SCHEMA.items():
            cols = ", ".join(f"{c} {SQL_TYPES[k].replace('VARCHAR', 'text')}"
                             f"{'' if (t, c) in NULLABLE else ' NOT NULL'}" for c, k in schema)
            self.cur.execute(f"CREATE TABLE {t} ({cols})")
            if p.dims[t]:
                execute_values(self.cur, f"INSERT INTO {t} VALUES %s", p.dims[t], page_size=5000)
        for t, schema in DIM_SCHEMA.items():
            if schema[0][0] == "id":
                self.cur.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (id)")
        self.cur.execute("CREATE INDEX ON apps (client_id)")
        self.cur.execute("CREATE INDEX ON departments (client_id)")
        self.cur.execute("CREATE INDEX ON user_departments (user_id)")
        self.cur.execute("CREATE INDEX ON user_departments (department_id)")
        t0 = time.perf_counter()
        self.cur.execute("BEGIN")
        self.cur.execute(f"CREATE TABLE {USAGE} (client_id uuid NOT NULL, user_id uuid NOT NULL,"
                         " application_id uuid NOT NULL, activity_date date NOT NULL)")
        for f in p.usage_files:
            self.cur.execute(f"COPY {USAGE} FROM '{f}' WITH (FORMAT csv, HEADER true, FREEZE true)")
        self.cur.execute("COMMIT")
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        # the indexes a DBA would add for these queries; INCLUDE makes index-only scans possible
        self.cur.execute(f"CREATE INDEX usage_client_date ON {USAGE} (client_id, activity_date)"
                         " INCLUDE (user_id, application_id)")
        self.cur.execute(f"CREATE INDEX usage_client_app_date ON {USAGE} (client_id, application_id, activity_date)"
                         " INCLUDE (user_id)")
        # per-user lookups: D, and every department filter (without it PostgreSQL picks a nested loop of
        # department users × apps over the app index: 17-28 s instead of 0.4 s for A 366 d on 7M rows)
        self.cur.execute(f"CREATE INDEX usage_client_user_date ON {USAGE} (client_id, user_id, activity_date)"
                         " INCLUDE (application_id)")
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.cur.execute("VACUUM ANALYZE")
        return {"load_s": load_s, "rows_per_s": p.usage_rows / load_s, "index_s": index_s,
                "vacuum_analyze_s": time.perf_counter() - t0,
                "how": "one transaction: CREATE TABLE + COPY … (FORMAT csv, HEADER, FREEZE) per file, wal_level"
                       " minimal; then 3 indexes (timed as index_s) and VACUUM ANALYZE"}

    def size(self) -> dict:
        r = self.query(f"SELECT pg_table_size('{USAGE}'), pg_indexes_size('{USAGE}'),"
                       f" pg_total_relation_size('{USAGE}')")[0]
        return {"bytes": int(r[2]), "table_bytes": int(r[0]), "index_bytes": int(r[1]),
                "what": "pg_total_relation_size of the usage table (heap + 3 indexes)"}

    def query(self, sql: str):
        self.cur.execute(sql)
        return self.cur.fetchall()

    def close(self):
        try:
            if getattr(self, "con", None) is not None:
                self.con.close()
                self.con = None
        except Exception:
            pass
        if self.proc_started:
            try:
                self._as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"])
            except Exception as e:  # last resort: the postmaster pid from its pid file
                try:
                    with open(os.path.join(self.data, "postmaster.pid")) as f:
                        os.kill(int(f.readline()), 15)
                except Exception:
                    pass
                self.log(f"postgres stop: {e}")
            self.proc_started = False
