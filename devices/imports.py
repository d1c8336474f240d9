"""Provisioning CSV files as people really make them, and the set-wise checks and writes of an import.

Reading: UTF-8 with or without BOM, UTF-16 with BOM (Excel's "Unicode text"), any line ending, `,`
`;` or tab (sniffed from the header), quoted fields, blank lines. The file is streamed from its
bytes and never held decoded, so a 1,000,000-row file stays within a few hundred MB.

Checking: each row's cells are checked in Python; what needs the rest of the file or the inventory
(duplicates, other organizations' MACs, rows already onboarded) is found with set queries over a
temporary table of the staged rows, never with a query per row."""

# The SQL here is built from quoted identifiers of our own models; every value is a parameter.
# ruff: noqa: S608

import codecs
import csv
import io
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.db import connection as default_connection
from django.utils import timezone

from devices.catalog import device_model_catalog, device_model_key
from devices.models import Device, DeviceModel, ImportRowError
from portal.mac import InvalidMac, normalize_mac
from portal.models import Tenant

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
INLINE_MAX_ROWS = 1000
SHOWN_ERRORS = 1000

TEMPLATE_NAME = "Template_Provisioning.csv"
LABELS = {"mac": "MAC id", "location": "Location", "display_name": "Display name", "model": "Model"}
TEMPLATE_HEADER = list(LABELS.values())
REQUIRED = ("mac", "location")
ALIASES = {
    "macid": "mac", "mac": "mac", "macaddress": "mac",
    "location": "location", "displayname": "display_name", "model": "model",
}
DELIMITERS = (",", ";", "\t")
STAGED_COLUMNS = "row_no, mac, location, display_name, model_id"  # what RowChecker.check stages
STAGED_TABLE = (  # their temporary table's columns
    "row_no integer NOT NULL, mac varchar(17) NOT NULL, location text NOT NULL, display_name text NOT NULL, "
    "model_id bigint NULL"
)
OTHER_ORGANIZATION = " is already onboarded by another organization"
# Sorts a row's errors that concern the whole row after those of its cells.
ROW_POSITION = 10_000

_HEADER_NOISE = re.compile(r"[\s_\-]+")
_MAX_LENGTH = {name: Device._meta.get_field(name).max_length for name in ("location", "display_name")}


@dataclass(frozen=True)
class RowError:
    row: int | None
    column: str
    message: str
    position: int = ROW_POSITION

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


def describe(error: dict) -> str:
    """`row 14, MAC id: "00-15-65-ZZ" is not a MAC address`."""
    row = f"row {error['row']}" if error.get("row") else ""
    where = ", ".join(part for part in (row, error.get("column")) if part)
    return f"{where}: {error['message']}" if where else error["message"]


class FileRejected(Exception):
    """The file as a whole cannot be imported (size, encoding, header, row count): nothing was checked."""

    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(describe(e.as_dict()) for e in errors))
        self.errors = errors


def _reject(message: str, *, row: int | None = None, column: str = "") -> FileRejected:
    return FileRejected([RowError(row, column, message)])


def _encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the byte order from the BOM and drops it
    if b"\x00" in data[:4096]:
        raise _reject(
            'The file looks like UTF-16 without a byte order mark. Save it as "CSV UTF-8" or "Unicode text".'
        )
    return "utf-8"


def _check_decodes(data: bytes, encoding: str, piece: int = 1 << 20) -> None:
    """Decode the file a megabyte at a time (never all of it at once) to say where it stops being text."""
    decoder = codecs.getincrementaldecoder(encoding)()
    for start in range(0, len(data), piece):
        try:
            decoder.decode(data[start : start + piece], final=start + piece >= len(data))
        except UnicodeDecodeError as exc:
            position = start + exc.start
            line = data[:position].decode(encoding, errors="replace").count("\n") + 1  # a rare path: may copy
            name = "UTF-16" if encoding == "utf-16" else "UTF-8"
            raise _reject(
                f"The file is not {name} text: line {line} has a byte that is not (0x{data[position]:02X}). "
                'Save it as "CSV UTF-8" or "Unicode text".'
            ) from None


def _header_key(name: str) -> str:
    return _HEADER_NOISE.sub("", name).lower()


def _is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


class CsvFile:
    """A provisioning file whose size, encoding, header and row count are known to be acceptable."""

    def __init__(self, data: bytes, *, total_rows: int | None = None):
        """`total_rows`: the count found when these very bytes were accepted (a queued job's), so
        the worker does not read the whole file once more to count it."""
        if len(data) > MAX_BYTES:
            raise _reject(
                f"The file is {len(data):,} bytes; the limit is {MAX_BYTES // 1024 // 1024} MB ({MAX_BYTES:,} bytes). "
                "Split it into smaller files."
            )
        self.data = data
        self.encoding = _encoding(data)
        _check_decodes(data, self.encoding)
        self.delimiter = self._sniff()
        self.columns: list[str | None] = []  # field name per position
        self.header_row = 0
        self._read_header()
        self.total_rows = total_rows or self._count_rows()
        if not self.total_rows:
            raise _reject("The file has no rows under its header: add one row per phone.")

    def _lines(self) -> io.TextIOWrapper:
        # newline="" hands line endings to the csv module, which reads quoted line breaks correctly.
        return io.TextIOWrapper(io.BytesIO(self.data), encoding=self.encoding, newline="")

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(row number as a spreadsheet shows it, cells) of every record, blank ones included."""
        number = 0
        reader = csv.reader(self._lines(), delimiter=self.delimiter, quotechar='"', doublequote=True, strict=False)
        try:
            for number, cells in enumerate(reader, start=1):
                yield number, cells
        except csv.Error as exc:
            raise _reject(f"cannot be read as CSV ({exc})", row=number + 1) from None

    def _sniff(self) -> str:
        """The delimiter that makes the most known column names of the first non-blank line."""
        first = next((line for line in self._lines() if line.strip()), "")
        best, best_score = ",", (-1, -1)
        for delimiter in DELIMITERS:
            cells = next(csv.reader([first], delimiter=delimiter), [])
            score = (sum(_header_key(cell) in ALIASES for cell in cells), len(cells))
            if score > best_score:
                best, best_score = delimiter, score
        return best

    def _read_header(self) -> None:
        first = next(((number, cells) for number, cells in self._records() if not _is_blank(cells)), None)
        if first is None:
            raise _reject(f"The file is empty. Start it with the header {','.join(TEMPLATE_HEADER)}.")
        number, cells = first
        self.header_row = number
        while cells and not cells[-1].strip():
            cells.pop()  # Excel pads rows with empty cells
        errors, seen = [], {}
        expected = ", ".join(TEMPLATE_HEADER)
        for position, name in enumerate(cells):
            key = ALIASES.get(_header_key(name))
            label = name.strip()
            if not label:
                errors.append(RowError(number, f"column {position + 1}", f"has no name; the columns are {expected}"))
            elif key is None:
                errors.append(RowError(number, label, f'unknown column "{label}"; the columns are {expected}'))
            elif key in seen:
                errors.append(RowError(number, label, f'"{label}" repeats the column "{seen[key]}"'))
            else:
                seen[key] = label
            self.columns.append(key if key not in self.columns else None)
        for key in REQUIRED:
            if key not in seen:
                errors.append(RowError(number, LABELS[key], f"the header has no {LABELS[key]} column"))
        if errors:
            raise FileRejected(errors)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells) of each non-blank row after the header."""
        for number, cells in self._records():
            if number > self.header_row and not _is_blank(cells):
                yield number, cells

    def _count_rows(self) -> int:
        count = 0
        for _ in self.rows():
            count += 1
            if count > MAX_ROWS:
                raise _reject(
                    f"The file has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}. Split it into smaller files."
                )
        return count


class RowChecker:
    """The checks of one row that need nothing but the row (and the catalog)."""

    def __init__(self, csv_file: CsvFile, catalog: dict[str, int]):
        self.catalog = catalog
        self.width = len(csv_file.columns)
        self.index = {key: position for position, key in enumerate(csv_file.columns) if key}
        self.labels = {key: LABELS[key] for key in self.index}
        self.positions = tuple(self.index.get(key) for key in LABELS)  # mac, location, display name, model
        self._model_ids: dict[str, int | None] = {}  # a file names a handful of models a million times

    def _model_id(self, model: str) -> int | None:
        try:
            return self._model_ids[model]
        except KeyError:
            model_id = self.catalog.get(device_model_key(model))
            if len(self._model_ids) < 1000:
                self._model_ids[model] = model_id
            return model_id

    def check(self, number: int, cells: list[str]) -> tuple[tuple | None, list[RowError]]:
        """The row to stage (row, mac, location, display name, model id) if its MAC is valid, and its errors."""
        errors = []
        index, labels = self.index, self.labels
        if len(cells) < self.width:
            cells = cells + [""] * (self.width - len(cells))
        mac_at, location_at, name_at, model_at = self.positions
        mac = cells[mac_at].strip()
        location = cells[location_at].strip()
        display_name = cells[name_at].strip() if name_at is not None else ""
        model = cells[model_at].strip() if model_at is not None else ""
        canonical = None
        if not mac:
            errors.append(RowError(number, labels["mac"], "a MAC address is required", index["mac"]))
        else:
            try:
                canonical = normalize_mac(mac)
            except InvalidMac as exc:
                errors.append(RowError(number, labels["mac"], str(exc), index["mac"]))
        if not location:
            errors.append(RowError(number, labels["location"], "a location is required", index["location"]))
        for key, value in (("location", location), ("display_name", display_name)):
            if len(value) > _MAX_LENGTH[key]:
                errors.append(
                    RowError(number, labels[key], f"is {len(value)} characters long; the limit is {_MAX_LENGTH[key]}",
                             index[key])
                )
        model_id = None
        if model:
            model_id = self._model_id(model)
            if model_id is None:
                message = f'"{model}" is not a known device model'
                errors.append(RowError(number, labels["model"], message, index["model"]))
        if len(cells) > self.width and (beyond := [i for i in range(self.width, len(cells)) if cells[i].strip()]):
            # Named by position, as a header cell without a name is: the first value past the header.
            message = f"has {beyond[-1] + 1} values; the header has {self.width} columns"
            errors.append(RowError(number, f"column {beyond[0] + 1}", message, beyond[0]))
        staged = (number, canonical, location, display_name, model_id) if canonical else None
        return staged, errors


class Staging:
    """The temporary tables of one import on one database connection: the rows whose MAC is valid,
    and every error found. Set queries over them find what a row cannot tell alone."""

    def __init__(self, *, job_id: int, connection=default_connection):
        self.connection = connection
        quote = connection.ops.quote_name
        self.rows = quote(f"import_rows_{job_id}")
        self.errors = quote(f"import_errors_{job_id}")
        self.rows_mac = quote(f"import_rows_{job_id}_mac")
        self.postgres = connection.vendor == "postgresql"

    def _execute(self, sql: str, params=()) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def _scalar(self, sql: str, params=()):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def create(self, *, big: bool = False) -> None:
        self.drop()
        if big and self.postgres:
            self._tune()
        self._execute(
            f"CREATE TEMPORARY TABLE {self.rows} ({STAGED_TABLE}, existing boolean NOT NULL DEFAULT FALSE)"
        )
        self._execute(
            f"CREATE TEMPORARY TABLE {self.errors} (row_no integer NULL, position integer NOT NULL, "
            "kind integer NOT NULL, col text NOT NULL, message text NOT NULL)"
        )

    def _tune(self) -> None:
        """Room for the sorts and the temporary tables of a million rows; the defaults (4 MB, 8 MB)
        make PostgreSQL spill them to disk. temp_buffers can only be raised before the session first
        touches a temporary table, so a reused connection keeps what it had."""
        self._execute("SET work_mem = '64MB'")
        try:
            with transaction.atomic(using=self.connection.alias):
                self._execute("SET temp_buffers = '256MB'")
        except DatabaseError:
            pass

    def drop(self) -> None:
        for table in (self.rows, self.errors):
            self._execute(f"DROP TABLE IF EXISTS {table}")
        if self.postgres:
            self._execute("RESET work_mem")

    def _load(self, table: str, columns: str, records: Iterable[tuple]) -> None:
        with self.connection.cursor() as cursor:
            if self.postgres:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for record in records:
                        copy.write_row(record)
            else:
                marks = ", ".join(["%s"] * (columns.count(",") + 1))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(records))

    def add_rows(self, rows: list[tuple]) -> None:
        self._load(self.rows, STAGED_COLUMNS, rows)

    def add_errors(self, errors: list[RowError], kind: int = 0) -> None:
        self._load(
            self.errors, "row_no, position, kind, col, message",
            ((e.row, e.position, kind, e.column, e.message) for e in errors),
        )

    def index(self) -> None:
        self._execute(f"CREATE INDEX {self.rows_mac} ON {self.rows} (mac)")
        if self.postgres:
            self._execute(f"ANALYZE {self.rows}")

    def find_duplicates(self, *, column: str, position: int) -> None:
        """Every row whose MAC an earlier row has: the error names both rows."""
        self._execute(
            f"INSERT INTO {self.errors} (row_no, position, kind, col, message) "
            f"SELECT s.row_no, %s, 1, %s, s.mac || ' is also in row ' || CAST(f.first_row AS varchar(10)) "
            f"FROM {self.rows} s JOIN (SELECT mac, MIN(row_no) AS first_row FROM {self.rows} "
            "GROUP BY mac HAVING COUNT(*) > 1) f ON f.mac = s.mac WHERE s.row_no > f.first_row",
            [position, column],
        )

    def find_other_owners(self, *, tenant_id: int, column: str, position: int) -> None:
        """Rows whose MAC another organization has onboarded; which one is never said. Asked again
        before each write attempt, so the errors of an earlier attempt go first."""
        self._execute(f"DELETE FROM {self.errors} WHERE kind = 2")
        self._execute(
            f"INSERT INTO {self.errors} (row_no, position, kind, col, message) "
            f"SELECT s.row_no, %s, 2, %s, s.mac || %s FROM {self.rows} s "
            f"JOIN {_table(Device)} d ON d.{_column(Device, 'mac')} = s.mac "
            f"WHERE d.{_column(Device, 'tenant')} <> %s",
            [position, column, OTHER_ORGANIZATION, tenant_id],
        )

    def mark_existing(self) -> int:
        """Flag the rows already in the inventory (of this tenant, once other owners are ruled out)."""
        self._execute(f"UPDATE {self.rows} SET existing = FALSE WHERE existing")
        self._execute(
            f"UPDATE {self.rows} SET existing = TRUE WHERE EXISTS "
            f"(SELECT 1 FROM {_table(Device)} d WHERE d.{_column(Device, 'mac')} = {self.rows}.mac)"
        )
        return self._scalar(f"SELECT COUNT(*) FROM {self.rows} WHERE existing")

    def error_count(self) -> int:
        return self._scalar(f"SELECT COUNT(*) FROM {self.errors}")

    def first_errors(self, limit: int) -> list[dict]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT row_no, col, message FROM {self.errors} ORDER BY row_no, position, kind LIMIT %s", [limit]
            )
            return [{"row": row, "column": col, "message": message} for row, col, message in cursor.fetchall()]

    def save_errors(self, *, job_id: int) -> None:
        """Keep the full list for the CSV download, in the order the page shows it."""
        self._execute(
            f"INSERT INTO {_table(ImportRowError)} ({_column(ImportRowError, 'job')}, "
            f"{_column(ImportRowError, 'row')}, {_column(ImportRowError, 'column')}, "
            f"{_column(ImportRowError, 'message')}) "
            f"SELECT %s, row_no, col, message FROM {self.errors} ORDER BY row_no, position, kind",
            [job_id],
        )

    def chunks(self, size: int) -> list[tuple[str, str | None]]:
        """MAC ranges (after, up to) of about `size` new rows each, in MAC order: two imports that
        overlap then take the unique index's row locks in the same order and cannot deadlock."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT mac FROM (SELECT mac, ROW_NUMBER() OVER (ORDER BY mac) AS n FROM {self.rows} "
                "WHERE NOT existing) numbered WHERE n %% %s = 0 ORDER BY mac",
                [size],
            )
            bounds = [mac for (mac,) in cursor.fetchall()]
        return list(zip(["", *bounds], [*bounds, None], strict=True))

    def write(self, *, tenant_id: int, after: str, upto: str | None) -> int:
        """Insert the new rows of one MAC range as devices."""
        return self._execute(
            *_devices_insert(
                self.rows, after, upto, only="NOT s.existing", tenant_id=tenant_id, connection=self.connection
            )
        )


class DeviceWriter:
    """Writes the devices of a big file on PostgreSQL, taking its rows while the file is still being read.

    Reading and checking rows is Python (one core); PostgreSQL (the other) meanwhile loads them into
    a temporary table of its own. Then the devices are written from it in MAC order, a range at a
    time: inserting a million rows in the file's order cost a third more, every index taking them
    at random places. The writer is a thread with its own database connection and one transaction,
    and nothing it writes is seen before `commit`. That commits only if every row handed over became
    a device: then the file had no duplicate, no MAC of another organization and nothing already
    onboarded, so it needs no set-wise checks. A chunk with a MAC already onboarded (found as it
    comes in: a file uploaded again gives way at once), a taken MAC at the insert (unique
    violation), a deadlock with another import or a short count roll everything back, for the
    checked path (Staging) to find out why. After an error the thread keeps draining its queue, so
    the reading side never blocks."""

    _ABANDON = object()
    SAMPLE_EVERY = 64  # MACs kept in memory to cut the file into ranges of about `batch_rows`

    def __init__(self, *, job_id: int, tenant_id: int, batch_rows: int):
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.batch_rows = batch_rows
        self.written = 0  # read by the reading side for progress
        self.error: BaseException | None = None
        self._sample: list[str] = []
        self._closed = False
        self._cancelled = False
        self._committed = False
        self._progressed = threading.Event()  # set by the writer after each range it writes
        self._queue: queue.Queue = queue.Queue(maxsize=2)  # at most two chunks in memory ahead of the writer
        self._thread = threading.Thread(target=self._run, name=f"import-{job_id}-writer", daemon=True)
        self._thread.start()

    def write(self, rows: list[tuple]) -> None:
        if not self._closed and self.error is None:
            self._queue.put(rows)

    def abandon(self) -> None:
        self._close(self._ABANDON)

    @property
    def gave_way(self) -> bool:
        """A row cannot become a new device (its MAC is taken) or another import got in the way:
        the checked path must take the file."""
        error = self.error
        return isinstance(error, AlreadyOnboarded) or is_deadlock(error) or is_unique_violation(error)

    def commit(self, *, expected: int, finish: Callable[[int], None], on_wait: Callable[[int], None]) -> bool:
        """Commit if exactly `expected` devices were written, running `finish(written)` in the same
        transaction first. False when rolled back because the count differs or the writer gave way;
        any other error is raised."""
        self._close((expected, finish), on_wait=on_wait)
        if self.error is not None and not self.gave_way:
            raise self.error
        return self._committed

    def _close(self, command, on_wait: Callable[[int], None] | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(command)
        try:
            while self._thread.is_alive():
                self._progressed.wait(timeout=1)
                self._progressed.clear()
                if on_wait:
                    on_wait(self.written)
        except BaseException:
            # Stopped while waiting (a Celery time limit, say): the writer must not commit behind our back.
            self._cancelled = True
            self._thread.join()
            raise
        self._thread.join()

    def _ranges(self) -> list[tuple[str, str | None]]:
        """MAC ranges (after, up to) of about `batch_rows` rows each, from the sample."""
        sample = sorted(self._sample)
        step = max(self.batch_rows // self.SAMPLE_EVERY, 1)
        bounds = sample[step::step]
        return list(zip(["", *bounds], [*bounds, None], strict=True))

    def _run(self) -> None:
        from django.db import connection, connections

        command = None
        try:
            with connection.cursor() as cursor:
                # Room for the table in memory; settable only before the session's first temporary table.
                cursor.execute("SET temp_buffers = '256MB'")
            with transaction.atomic(), connection.cursor() as cursor:
                rows = connection.ops.quote_name(f"import_stream_{self.job_id}")
                cursor.execute(f"CREATE TEMPORARY TABLE {rows} ({STAGED_TABLE}) ON COMMIT DROP")
                cursor.execute(f"CREATE INDEX ON {rows} (mac)")  # built while the file is read
                mac = _column(Device, "mac")
                any_onboarded = f"SELECT EXISTS (SELECT 1 FROM {_table(Device)} WHERE {mac} = ANY(%s))"
                while isinstance(command := self._queue.get(), list):
                    with cursor.copy(f"COPY {rows} ({STAGED_COLUMNS}) FROM STDIN") as copy:
                        for row in command:
                            copy.write_row(row)
                    self._sample.extend(row[1] for row in command[:: self.SAMPLE_EVERY])
                    # A file uploaded again gives way at its first chunk, not after the whole file is read.
                    cursor.execute(any_onboarded, [[row[1] for row in command]])
                    if cursor.fetchone()[0]:
                        raise AlreadyOnboarded
                if command is self._ABANDON:
                    transaction.set_rollback(True)
                    return
                cursor.execute(f"ANALYZE {rows}")
                with references_checked_once(cursor, source=rows, tenant_id=self.tenant_id):
                    for after, upto in self._ranges():
                        if self._cancelled:
                            break
                        cursor.execute(
                            *_devices_insert(rows, after, upto, tenant_id=self.tenant_id, connection=connection)
                        )
                        self.written += cursor.rowcount
                        self._progressed.set()
                expected, finish = command
                if self._cancelled or self.written != expected:
                    transaction.set_rollback(True)
                    return
                finish(self.written)
                if self._cancelled:
                    transaction.set_rollback(True)
                    return
            self._committed = True
        except BaseException as exc:  # handed to the reading side
            self.error = exc
            while command is not self._ABANDON and not isinstance(command, tuple):
                command = self._queue.get()  # drain: the reading side may still be putting chunks
        finally:
            connections.close_all()  # this thread's connections only
            self._progressed.set()


class AlreadyOnboarded(Exception):
    """A chunk handed to the writer has a MAC that is in the inventory already."""


def is_deadlock(error: BaseException) -> bool:
    """Two imports of overlapping files, each waiting for rows the other wrote; PostgreSQL cancels one."""
    return isinstance(error, OperationalError) and getattr(error.__cause__, "sqlstate", None) == DEADLOCK


def is_unique_violation(error: BaseException) -> bool:
    """A row whose MAC is taken: by the file itself, by the inventory, or by another import."""
    return isinstance(error, IntegrityError) and getattr(error.__cause__, "sqlstate", None) == UNIQUE_VIOLATION


# PostgreSQL's SQLSTATEs
DEADLOCK = "40P01"
UNIQUE_VIOLATION = "23505"


def _devices_insert(
    source: str, after: str, upto: str | None, *, tenant_id: int, connection, only: str = "TRUE"
) -> tuple[str, list]:
    """INSERT ... SELECT (and its parameters) of the staged rows `s` of `source` whose MAC is after
    `after` and up to `upto` (None: to the end), in MAC order, as devices of the tenant."""
    columns, expressions, values = _device_insert(tenant_id=tenant_id, now=timezone.now(), connection=connection)
    where, params = f"{only} AND s.mac > %s", [after]
    if upto is not None:
        where += " AND s.mac <= %s"
        params.append(upto)
    sql = (
        f"INSERT INTO {_table(Device)} ({', '.join(columns)}) SELECT {', '.join(expressions)} "
        f"FROM {source} s WHERE {where} ORDER BY s.mac"
    )
    return sql, [*values, *params]


@contextmanager
def references_checked_once(cursor, *, source: str, tenant_id: int) -> Iterator[bool]:
    """Devices inserted inside skip PostgreSQL's foreign key triggers; their checks are made here
    once, for the tenant and every model the staged rows of `source` name, instead of once per row.
    Those are the only references an import fills (a test holds it to that).

    Per row, a check locks the referenced row FOR KEY SHARE (so it cannot be deleted before the
    commit) and fails if it is missing. For a million devices that queued two million checks for
    the commit, a fifth of the import (bench/import_csv.py). The same locks are taken here up front
    and held to the end of the transaction (the deferred checks took them only at the commit: a
    tenant or model deleted meanwhile waits for the import). Skipping the triggers means setting
    session_replication_role for this transaction, which needs a superuser or, on PostgreSQL 15+,
    `GRANT SET ON PARAMETER session_replication_role`; without it, or if a reference is missing,
    the triggers run as usual. Yields whether they are skipped. Must run inside a transaction."""
    if (
        cursor.db.vendor != "postgresql"
        or not _may_skip_triggers(cursor)
        or not _references_locked(cursor, source=source, tenant_id=tenant_id)
    ):
        yield False
        return
    cursor.execute("SET LOCAL session_replication_role = replica")
    yield True
    # Not reached on an error: the transaction (or savepoint) then rolls back, and the setting with
    # it. A failure here raises too: nothing else may run in this transaction without its checks.
    cursor.execute("SET LOCAL session_replication_role = origin")


def _may_skip_triggers(cursor) -> bool:
    if cursor.db.pg_version >= 150000:
        cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
    else:
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
    return cursor.fetchone()[0]


def _references_locked(cursor, *, source: str, tenant_id: int) -> bool:
    cursor.execute(f"SELECT 1 FROM {_table(Tenant)} WHERE id = %s FOR KEY SHARE", [tenant_id])
    if cursor.fetchone() is None:
        return False
    cursor.execute(f"SELECT DISTINCT model_id FROM {source} WHERE model_id IS NOT NULL")
    named = {model_id for (model_id,) in cursor.fetchall()}
    if not named:
        return True
    cursor.execute(f"SELECT id FROM {_table(DeviceModel)} WHERE id = ANY(%s) FOR KEY SHARE", [list(named)])
    return len(cursor.fetchall()) == len(named)


def _table(model) -> str:
    return default_connection.ops.quote_name(model._meta.db_table)


def _column(model, name: str) -> str:
    return default_connection.ops.quote_name(model._meta.get_field(name).column)


# Device fields an import fills from the staged row; the others get their defaults.
_STAGED = {"mac": "s.mac", "location": "s.location", "display_name": "s.display_name", "model": "s.model_id"}


def _device_insert(*, tenant_id: int, now, connection) -> tuple[list[str], list[str], list]:
    columns, expressions, values = [], [], []
    for field in Device._meta.concrete_fields:
        if field.primary_key or field.generated:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in _STAGED:
            expressions.append(_STAGED[field.name])
            continue
        if field.name == "tenant":
            value = tenant_id
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            # As the ORM stores it (SQLite keeps text: an aware value would sort apart from the rest).
            value = field.get_db_prep_save(now, connection)
        else:
            value = field.get_db_prep_save(field.get_default(), connection)
        expressions.append("%s")
        values.append(value)
    return columns, expressions, values


def checked_chunks(csv_file: CsvFile, size: int) -> Iterator[tuple[int, list[tuple], list[RowError]]]:
    """(rows checked so far, rows to stage, errors) for every `size` rows of the file: each row's
    own checks, the ones that need nothing but the row."""
    checker = RowChecker(csv_file, device_model_catalog())
    rows: list[tuple] = []
    errors: list[RowError] = []
    processed = 0
    for number, cells in csv_file.rows():
        staged, row_errors = checker.check(number, cells)
        if staged:
            rows.append(staged)
        if row_errors:
            errors.extend(row_errors)
        processed += 1
        if processed % size == 0:
            yield processed, rows, errors
            rows, errors = [], []
    yield processed, rows, errors


def check_file(
    csv_file: CsvFile, staging: Staging, *, flush_every: int, on_progress: Callable[[int], None] | None = None
) -> None:
    """Check every row, staging rows with a valid MAC and every cell error, `flush_every` rows at a time."""
    for processed, rows, errors in checked_chunks(csv_file, flush_every):
        staging.add_rows(rows)
        staging.add_errors(errors)
        if on_progress:
            on_progress(processed)


def stream_file(
    csv_file: CsvFile, writer: DeviceWriter, *, chunk_rows: int, on_progress: Callable[[int], None]
) -> int | None:
    """Hand the rows of the file to the writer as they pass their own checks. The number of rows
    handed over, or None at the first row error or once the writer stopped (the checked path then
    takes the file)."""
    sent = 0
    for processed, rows, errors in checked_chunks(csv_file, chunk_rows):
        if errors or writer.error is not None:
            return None
        writer.write(rows)
        sent += len(rows)
        on_progress(processed)
    return sent
