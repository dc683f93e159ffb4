"""Reading a dump (SPEC §1) and preparing the plain-CSV copy every engine loads.

`prepare(dump, out)` writes `out/` with
- `<table>.csv` for each catalog table, decompressed but otherwise verbatim (Tally reads these),
- `app_usage_reports/part-NNNN.csv`: the usage parts decompressed.  A part whose header is exactly
  `client_id,user_id,application_id,activity_date` is copied byte for byte; any other part (other
  column order, extra columns such as the sample's `id`/`created_at`) is rewritten with just those
  four columns, ids in lower case, so that PostgreSQL's COPY, DuckDB's read_csv and chDB's file()
  read the very same files without per-file column lists.
No manifest is written: SPEC §1 makes it optional.

It also parses the catalog tables with an RFC 4180 reader that keeps the NULL (empty unquoted) /
empty string (`""`) distinction, for loading them into the peers.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field

USAGE = "app_usage_reports"
USAGE_COLS = ["client_id", "user_id", "application_id", "activity_date"]
CANONICAL_HEADER = ",".join(USAGE_COLS)

# table -> (column, kind); kind: uuid, text, bool, int, date, ts
DIM_SCHEMA = {
    "clients": [("id", "uuid"), ("name", "text"), ("timezone", "text"), ("licensed_seats", "int")],
    "catalog_categories": [("id", "uuid"), ("name", "text"), ("is_ai", "bool")],
    "catalog_vendors": [("id", "uuid"), ("name", "text")],
    "catalog_applications": [("id", "uuid"), ("canonical_name", "text"), ("logo", "text"), ("type", "text"),
                             ("category_id", "uuid"), ("vendor_id", "uuid")],
    "apps": [("id", "uuid"), ("client_id", "uuid"), ("catalog_application_id", "uuid"), ("is_approved", "bool"),
             ("is_favorite", "bool")],
    "departments": [("id", "uuid"), ("client_id", "uuid"), ("name", "text"), ("description", "text")],
    "users": [("id", "uuid"), ("client_id", "uuid"), ("email", "text"), ("display_name", "text"),
              ("is_active", "bool"), ("role", "text")],
    "user_departments": [("user_id", "uuid"), ("department_id", "uuid")],
}
TABLES = list(DIM_SCHEMA) + [USAGE]
SUFFIXES = (".csv.lz4", ".csv.gz", ".csv")


def table_files(dump: str) -> dict[str, list[str]]:
    """Relative file paths of each table, from manifest.json when present, else from the folder."""
    man = os.path.join(dump, "manifest.json")
    if os.path.exists(man):
        with open(man) as f:
            m = json.load(f)
        return {t: list(m["tables"].get(t, [])) for t in TABLES}
    out: dict[str, list[str]] = {}
    for t in TABLES:
        files = []
        for suf in SUFFIXES:
            if os.path.isfile(os.path.join(dump, t + suf)):
                files.append(t + suf)
        d = os.path.join(dump, t)
        if os.path.isdir(d):
            files += sorted(os.path.join(t, n) for n in os.listdir(d) if n.endswith(SUFFIXES))
        out[t] = files
    return out


def decompress_to(src: str, dst: str) -> None:
    if src.endswith(".lz4"):
        if shutil.which("lz4"):
            subprocess.run(["lz4", "-d", "-q", "-f", src, dst], check=True)
        else:
            import lz4.frame
            with lz4.frame.open(src, "rb") as i, open(dst, "wb") as o:
                shutil.copyfileobj(i, o, 1 << 22)
    elif src.endswith(".gz"):
        with gzip.open(src, "rb") as i, open(dst, "wb") as o:
            shutil.copyfileobj(i, o, 1 << 22)
    else:
        shutil.copyfile(src, dst)


def read_text(path: str) -> str:
    if path.endswith(".lz4"):
        import lz4.frame
        with lz4.frame.open(path, "rb") as f:
            return f.read().decode("utf-8")
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read().decode("utf-8")
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def parse_csv(text: str) -> list[list]:
    """RFC 4180 records; an empty unquoted field is None, a quoted empty field is ''."""
    rows: list[list] = []
    row: list = []
    i, n = 0, len(text)
    if text.startswith("\ufeff"):
        i = 1
    while i < n:
        # start of a field
        if text[i] == '"':
            i += 1
            buf = []
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise ValueError("unterminated quoted field")
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            val = "".join(buf)
        else:
            j = i
            while j < n and text[j] not in ',\r\n':
                j += 1
            val = text[i:j] if j > i else None
            i = j
        row.append(val)
        if i >= n:
            rows.append(row)
            break
        c = text[i]
        if c == ',':
            i += 1
            if i >= n:
                row.append(None)
                rows.append(row)
            continue
        # end of record
        if c == '\r' and i + 1 < n and text[i + 1] == '\n':
            i += 2
        else:
            i += 1
        rows.append(row)
        row = []
    return [r for r in rows if r != [None]]


def to_bool(s):
    if s is None:
        return None
    return s.strip().lower() in ("true", "t", "1")


def convert(v, kind):
    if v is None:
        return None
    if kind == "uuid":
        return v.strip().lower()
    if kind == "bool":
        return to_bool(v)
    if kind == "int":
        return int(v)
    return v


def read_dims(dump: str, files: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Catalog tables as lists of tuples in DIM_SCHEMA column order."""
    out = {}
    for t, schema in DIM_SCHEMA.items():
        rows = []
        for rel in files.get(t, []):
            recs = parse_csv(read_text(os.path.join(dump, rel)))
            header = recs[0]
            idx = {h: k for k, h in enumerate(header)}
            for r in recs[1:]:
                rows.append(tuple(convert(r[idx[c]] if c in idx and idx[c] < len(r) else None, kind)
                                  for c, kind in schema))
        out[t] = rows
    return out


@dataclass
class Prepared:
    plain: str                      # the plain-CSV dump folder
    usage_files: list[str]          # absolute paths of the plain usage parts
    usage_rows: int                 # CSV records in them (duplicates included)
    usage_bytes: int
    rewritten: list[str] = field(default_factory=list)   # parts that were projected / re-ordered
    dims: dict = field(default_factory=dict)


def count_records(path: str) -> int:
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 24)
            if not b:
                break
            n += b.count(b"\n")
            last = b[-1:]
    if last != b"\n":
        n += 1
    return n - 1  # header


def _project(src: str, dst: str) -> None:
    import csv
    with open(src, newline="", encoding="utf-8") as i, open(dst, "w", newline="", encoding="utf-8") as o:
        r = csv.reader(i)
        header = next(r)
        idx = [header.index(c) for c in USAGE_COLS]
        o.write(CANONICAL_HEADER + "\n")
        lines = []
        for rec in r:
            if not rec:
                continue
            lines.append(",".join(rec[k].strip().lower() if k != idx[3] else rec[k].strip() for k in idx))
            if len(lines) >= 100000:
                o.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            o.write("\n".join(lines) + "\n")


def prepare(dump: str, out: str, log=print) -> Prepared:
    files = table_files(dump)
    if not files.get(USAGE):
        raise SystemExit(f"{dump}: no {USAGE} files")
    os.makedirs(os.path.join(out, USAGE), exist_ok=True)
    for t in DIM_SCHEMA:
        fs = files.get(t, [])
        if not fs:
            continue
        dst = os.path.join(out, t + ".csv")
        if len(fs) == 1:
            decompress_to(os.path.join(dump, fs[0]), dst)
        else:  # several parts: concatenate, keeping one header
            with open(dst, "w", encoding="utf-8", newline="") as o:
                for k, rel in enumerate(fs):
                    text = read_text(os.path.join(dump, rel))
                    if k > 0:
                        text = text.split("\n", 1)[1] if "\n" in text else ""
                    if text and not text.endswith("\n"):
                        text += "\n"
                    o.write(text)
    usage, rewritten, rows, nbytes = [], [], 0, 0
    for k, rel in enumerate(files[USAGE]):
        dst = os.path.join(out, USAGE, f"part-{k:05d}.csv")
        tmp = dst + ".tmp"
        decompress_to(os.path.join(dump, rel), tmp)
        with open(tmp, "rb") as f:
            head = f.readline().decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
        if head == CANONICAL_HEADER:
            os.replace(tmp, dst)
        else:
            _project(tmp, dst)
            os.remove(tmp)
            rewritten.append(rel)
        rows += count_records(dst)
        nbytes += os.path.getsize(dst)
        usage.append(dst)
    dims = read_dims(dump, files)
    log(f"prepared {out}: {len(usage)} usage parts, {rows:,} rows, {nbytes / 1e6:.1f} MB of plain CSV"
        + (f"; rewritten to the 4 usage columns: {', '.join(rewritten)}" if rewritten else ""))
    return Prepared(out, usage, rows, nbytes, rewritten, dims)
