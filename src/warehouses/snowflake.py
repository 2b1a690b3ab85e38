"""Snowflake as the warehouse, through Snowpark: reads come back as Arrow batches, checks run in Snowflake,
prediction and feedback tables are written back with `write_arrow`.

Connection settings come from the stack's `warehouse:` block (values may be `${env:NAME}` references,
resolved here at run time), then from the SNOWFLAKE_* environment variables the Snowflake CLI uses, then
from ~/.snowflake/connections.toml; never from the spec. Password, key-pair (SNOWFLAKE_JWT) and
externalbrowser authentication are passed through to the connector as they are.

Snowflake upper-cases unquoted identifiers; DuckDB keeps them as written. So a result column that Snowflake
reports in upper case (`SESSION_ID`, from an unquoted `session_id`) is given back in lower case, and the
same spec reads the same column names from both warehouses.

Transient network failures are retried, with backoff, by the connector itself: the login up to LOGIN_RETRIES
times within LOGIN_TIMEOUT_S, every other request (a query, a result poll, closing the session) for up to the
stack's `retry_timeout_s`, through the backoff policy (`bounded_backoff`). The connector's own bound for those,
`network_timeout`, is left unset: the connector also starts a timer per query from it that cancels the query, so
it would stop a healthy query that runs longer than the bound.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rscale.errors import ConfigurationError, RscaleError
from rscale.references import resolve_optional
from rscale.warehouses import TableInfo

if TYPE_CHECKING:
    import pyarrow as pa

    from rscale.compiler.stack import SnowflakeWarehouse as SnowflakeConfig


# Stack field -> (connector argument, environment variable the Snowflake CLI reads for it).
SETTINGS = {
    "account": ("account", "SNOWFLAKE_ACCOUNT"),
    "user": ("user", "SNOWFLAKE_USER"),
    "password": ("password", "SNOWFLAKE_PASSWORD"),
    "authenticator": ("authenticator", "SNOWFLAKE_AUTHENTICATOR"),
    "private_key_file": ("private_key_file", "SNOWFLAKE_PRIVATE_KEY_FILE"),
    "private_key_file_pwd": ("private_key_file_pwd", "SNOWFLAKE_PRIVATE_KEY_FILE_PWD"),
    "database": ("database", "SNOWFLAKE_DATABASE"),
    "schema_": ("schema", "SNOWFLAKE_SCHEMA"),
    "warehouse": ("warehouse", "SNOWFLAKE_WAREHOUSE"),
    "role": ("role", "SNOWFLAKE_ROLE"),
    "host": ("host", "SNOWFLAKE_HOST"),
    "port": ("port", "SNOWFLAKE_PORT"),
    "protocol": ("protocol", "SNOWFLAKE_PROTOCOL"),
}
SECRET_SETTINGS = ("password", "private_key_file_pwd", "token")
LOGIN_TIMEOUT_S = 60
LOGIN_RETRIES = 5  # the connector's MAX_CON_RETRY_ATTEMPTS; its default of 1 gives up on one 503


def connection_settings(config: SnowflakeConfig) -> dict[str, Any]:
    """The connector's keyword arguments for a stack's warehouse block: stack, then environment, then
    connections.toml (by `connection_name`, SNOWFLAKE_DEFAULT_CONNECTION_NAME, or the file's default)."""
    settings: dict[str, Any] = {}
    for field, (argument, variable) in SETTINGS.items():
        value = resolve_optional(getattr(config, field, None), f"warehouse.{field}")
        if value is None:
            value = os.environ.get(variable) or None
        if value is not None:
            settings[argument] = value
    if "port" in settings:
        try:
            settings["port"] = int(settings["port"])
        except ValueError:
            raise ConfigurationError(
                f"the Snowflake port must be a number, got {settings['port']!r}",
                fix="set warehouse.port (or SNOWFLAKE_PORT) to a port number, or leave it unset",
            ) from None
    name = resolve_optional(config.connection_name, "warehouse.connection_name") or os.environ.get(
        "SNOWFLAKE_DEFAULT_CONNECTION_NAME"
    )
    if name is None and "account" not in settings:
        name = _default_connection_name()
    if name is not None:
        settings["connection_name"] = name
    if "account" not in settings and name is None:
        raise ConfigurationError(
            "no Snowflake account: the stack's warehouse block, SNOWFLAKE_ACCOUNT and ~/.snowflake/connections.toml "
            "give none",
            fix="set warehouse.account (e.g. ${env:SNOWFLAKE_ACCOUNT}) and user in the stack, export SNOWFLAKE_ACCOUNT "
            "and SNOWFLAKE_USER, or name a connection with warehouse.connection_name",
        )
    settings.setdefault("login_timeout", LOGIN_TIMEOUT_S)
    settings["backoff_policy"] = bounded_backoff(config.retry_timeout_s)
    settings["session_parameters"] = {"QUERY_TAG": "rscale", "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
    return settings


def bounded_backoff(retry_timeout_s: int) -> Callable[[], Iterator[int]]:
    """The connector's default backoff (exponential, 1-16 s, jittered) for a backoff policy that gives up on a
    request once it has been retried for `retry_timeout_s`, raising the connector's error 250003."""
    from snowflake.connector.backoff_policies import exponential_backoff

    policy = exponential_backoff()

    def backoff() -> Iterator[int]:
        # The connector makes one of these per request and takes its first sleep as the request starts, so the
        # deadline counts from there: the same clock as its network_timeout, without that one's query timer.
        deadline = time.monotonic() + retry_timeout_s
        for sleep in policy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _retries_exhausted(retry_timeout_s)
            yield max(1, min(sleep, math.ceil(remaining)))  # at least 1 s: full jitter may give 0, a busy loop

    return backoff


def _retries_exhausted(retry_timeout_s: int) -> Exception:
    from snowflake.connector.errorcode import ER_FAILED_TO_REQUEST
    from snowflake.connector.errors import OperationalError

    return OperationalError(
        msg=f"a request still failed after {retry_timeout_s} s of retries (warehouse.retry_timeout_s)",
        errno=ER_FAILED_TO_REQUEST,
    )


def _default_connection_name() -> str | None:
    """The default connection of connections.toml, if that file names one that exists."""
    try:
        from snowflake.connector.config_manager import CONFIG_MANAGER

        name: Any = CONFIG_MANAGER["default_connection_name"]
        connections: Any = CONFIG_MANAGER["connections"]
        return str(name) if name and name in connections else None
    except Exception:  # no file, or an unreadable one: the caller reports the missing account
        return None


# -- errors ------------------------------------------------------------------------------------------------


class SnowflakeError(RscaleError):
    """A Snowflake failure, with Snowflake's error code. The message never carries a credential."""

    def __init__(self, message: str, fix: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, fix)
        self.code = code


class SnowflakeConnectionError(SnowflakeError):
    """The account cannot be reached: a wrong account or host, or the network."""


class SnowflakeAuthError(SnowflakeError):
    """Snowflake refused the login: wrong user, password, key pair or authenticator."""


class SnowflakeObjectMissing(SnowflakeError):
    """A table, view, schema or database the query names does not exist (or the role cannot see it)."""


class SnowflakeSQLError(SnowflakeError):
    """Snowflake could not compile or run a statement."""


def translate_error(exc: BaseException, settings: dict[str, Any], *, sql: str | None = None) -> SnowflakeError:
    """Turn a connector or Snowpark exception into a short SnowflakeError naming Snowflake's error code."""
    inner = getattr(exc, "conn_error", None) or exc  # Snowpark wraps the connector's error
    errno = getattr(inner, "errno", None) or getattr(exc, "sql_error_code", None)
    code = f"{int(str(errno)):06d}" if isinstance(errno, int) or str(errno or "").isdigit() else None
    text = str(getattr(inner, "raw_msg", None) or getattr(inner, "msg", None) or inner)
    text = re.sub(r"^\(?\d{4,6}\)?(\s*\([0-9A-Z]{5}\))?:\s*", "", text.strip())  # the code is shown once, below
    text = " ".join(text.split())
    retried = inner.__context__  # retries given up (bounded_backoff): the connector's RetryRequest holds the cause
    if code == "250003" and retried is not None and type(retried).__name__ == "RetryRequest" and retried.args:
        text += f"; the last try got: {getattr(retried.args[0], 'raw_msg', None) or retried.args[0]}"
    if len(text) > 300:
        text = text[:297] + "..."
    for key in SECRET_SETTINGS:
        secret = settings.get(key)
        if secret:
            text = text.replace(str(secret), "***")
    where = f"account {settings.get('account') or settings.get('connection_name') or '?'}"
    if settings.get("user"):
        where += f", user {settings['user']}"
    label = f"Snowflake error {code}" if code else "Snowflake error"
    number = int(code) if code else 0
    if 390000 <= number < 391000:
        return SnowflakeAuthError(
            f"{label}: login refused ({where}): {text}",
            fix="check the user and its password, key pair (private_key_file) or authenticator; "
            "the stack's references say which environment variables they come from",
            code=code,
        )
    if number in (250001, 250003, 251001, 251005, 251006) or 290000 <= number < 291000 or (
        not code and _is_network(inner)
    ):
        return SnowflakeConnectionError(
            f"{label}: cannot reach Snowflake ({where}, host {settings.get('host') or 'default'}): {text}",
            fix="check the account identifier (orgname-accountname), host and network; the connector already "
            f"retried the login for up to {settings.get('login_timeout', LOGIN_TIMEOUT_S)} s and other requests for up "
            "to the stack's warehouse.retry_timeout_s",
            code=code,
        )
    statement = f" in:\n{sql.strip()[:500]}" if sql else ""
    if number == 2003 or "does not exist" in text:
        return SnowflakeObjectMissing(
            f"{label}: {text}{statement}",
            fix="check the name, and the database, schema and role the stack's warehouse block sets",
            code=code,
        )
    return SnowflakeSQLError(f"{label}: {text}{statement}", fix="fix the SQL; `rs compile --show-sql` prints it", code=code)


def _is_network(exc: BaseException) -> bool:
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


# -- the warehouse -----------------------------------------------------------------------------------------


class SnowflakeWarehouse:
    """One Snowpark session on one Snowflake account. Every SQL string given to it is Snowflake SQL."""

    kind = "snowflake"

    def __init__(self, config: SnowflakeConfig, *, read_only: bool = False) -> None:
        self.config = config
        self.read_only = read_only
        self._settings = connection_settings(config)
        _connector_environment()
        import snowflake.connector
        from snowflake.snowpark import Session

        try:
            self._connection = snowflake.connector.connect(**self._settings)
        except Exception as exc:
            raise translate_error(exc, self._settings) from None
        try:
            self._session = Session.builder.configs({"connection": self._connection}).create()
        except Exception as exc:
            self._connection.close()
            raise translate_error(exc, self._settings) from None

    # -- reading -------------------------------------------------------------------------------------

    def query_arrow(self, sql: str) -> pa.Table:
        """Run `sql` in Snowflake and fetch the result as Arrow, batch by batch (the connector's result chunks)."""
        import pyarrow as pa

        try:
            frame = self._session.sql(sql)
            batches = [batch for batch in frame.to_arrow_batches() if batch.num_rows]
            if batches:
                table = pa.concat_tables(batches)
            else:  # no chunks come back for an empty result: build its columns from the describe
                fields = frame.schema.fields
                table = pa.schema([pa.field(_raw_name(f.name), _arrow_type(f.datatype)) for f in fields]).empty_table()
        except Exception as exc:
            raise translate_error(exc, self._settings, sql=sql) from None
        return _as_rscale_table(table)

    def scalar(self, sql: str) -> Any:
        row = self._cursor_run(sql).fetchone()
        return None if row is None else row[0]

    def schema(self, sql: str) -> list[tuple[str, str]]:
        """Result columns and types from Snowflake's describe of the query: nothing is run.

        Types are given in DuckDB's spelling (BIGINT, DOUBLE, VARCHAR, TIMESTAMP, ...), so a data contract
        reads the same on either warehouse.
        """
        try:
            fields = self._session.sql(sql).schema.fields
        except Exception as exc:
            raise translate_error(exc, self._settings, sql=sql) from None
        return [(normalize_name(_raw_name(f.name)), duckdb_type_name(f.datatype)) for f in fields]

    def table_exists(self, table: str) -> bool:
        *schema, name = [_stored_name(part) for part in table.split(".")]
        sql = "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = %s"
        params = [name]
        if schema:
            sql += " AND UPPER(TABLE_SCHEMA) = UPPER(%s)"
            params.append(schema[-1])
        else:
            sql += " AND UPPER(TABLE_SCHEMA) = UPPER(CURRENT_SCHEMA())"
        return bool(self._cursor_run(sql, params).fetchone()[0])

    def tables(self) -> list[TableInfo]:
        """The tables and views of the current schema, with Snowflake's own row counts (no scan)."""
        cursor = self._cursor_run(
            "SELECT t.TABLE_NAME, t.TABLE_TYPE, t.ROW_COUNT, COUNT(c.COLUMN_NAME) "
            "FROM INFORMATION_SCHEMA.TABLES AS t LEFT JOIN INFORMATION_SCHEMA.COLUMNS AS c "
            "ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME "
            "WHERE UPPER(t.TABLE_SCHEMA) = UPPER(CURRENT_SCHEMA()) "
            "GROUP BY t.TABLE_NAME, t.TABLE_TYPE, t.ROW_COUNT ORDER BY 1"
        )
        out: list[TableInfo] = []
        for name, kind, rows, columns in cursor.fetchall():
            is_view = "VIEW" in str(kind).upper()
            out.append({
                "name": normalize_name(str(name)),
                "kind": "view" if is_view else "table",
                "rows": None if is_view or rows is None else int(rows),
                "columns": int(columns),
            })
        return out

    def fingerprint(self, sql: str) -> str:
        """A cache key that changes when the data behind `sql` changes, from Snowflake's own metadata.

        For each table the query reads: its row count, bytes and LAST_ALTERED from INFORMATION_SCHEMA, which
        costs no warehouse compute. A view, or a query whose tables cannot be named, has no such metadata for
        its data, so its result's HASH_AGG is used instead (computed in Snowflake, one row comes back).
        """
        digest = hashlib.sha256(sql.strip().encode())
        metadata = self._table_metadata(sql)
        if metadata is None:
            row = self._cursor_run(f"SELECT COUNT(*), HASH_AGG(*) FROM (\n{sql}\n) AS fingerprinted").fetchone()
            digest.update(f"\nresult {row[0]} {row[1]}".encode())
        else:
            for line in metadata:
                digest.update(f"\n{line}".encode())
        return digest.hexdigest()[:32]

    def _table_metadata(self, sql: str) -> list[str] | None:
        tables = tables_read(sql)
        if not tables:
            return None
        lines = []
        for catalog, schema, name in sorted(tables):
            # UPPER on both sides: fakesnow reports schema names in lower case where Snowflake upper-cases them.
            where = "TABLE_NAME = %s AND UPPER(TABLE_SCHEMA) = UPPER(" + ("%s" if schema else "CURRENT_SCHEMA()") + ")"
            params = [name, *([schema] if schema else [])]
            info = f"{_quote(catalog)}.INFORMATION_SCHEMA.TABLES" if catalog else "INFORMATION_SCHEMA.TABLES"
            row = self._cursor_run(
                f"SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_TYPE, ROW_COUNT, BYTES, LAST_ALTERED FROM {info} WHERE {where}",
                params,
            ).fetchone()
            if row is None or row[2] != "BASE TABLE" or row[3] is None:
                return None  # a view (or a table the role cannot see): no data version in the metadata
            lines.append(" ".join(str(v) for v in (*row[:2], name, *row[3:])))
        return lines

    # -- writing -------------------------------------------------------------------------------------

    def execute(self, sql: str) -> None:
        self._writable()
        self._cursor_run(sql)

    def append(self, table: str, data: pa.Table) -> int:
        """Append rows to `table`, creating it from the rows' Arrow schema when missing. Returns rows written.

        Plain column names are stored upper case, as Snowflake stores unquoted names, so SQL can name them
        without quotes.
        """
        self._writable()
        data = _stored_columns(data)
        self._cursor_run(f"CREATE TABLE IF NOT EXISTS {_table_sql(table)} ({_columns_ddl(data.schema)})")
        return self._write(table, data)

    def replace(self, table: str, data: pa.Table) -> int:
        """Create or replace `table` with exactly these rows (used by `rs seed` and tests)."""
        self._writable()
        data = _stored_columns(data)
        self._cursor_run(f"CREATE OR REPLACE TABLE {_table_sql(table)} ({_columns_ddl(data.schema)})")
        return self._write(table, data)

    def _write(self, table: str, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        *parents, name = [_stored_name(part) for part in table.split(".")]
        schema = parents[-1] if parents else None
        database = parents[-2] if len(parents) > 1 else None
        try:
            # write_arrow stages Parquet and runs COPY INTO: one round trip per chunk, not per row.
            self._session.write_arrow(
                data, name, database=database, schema=schema, quote_identifiers=True, auto_create_table=False
            )
        except Exception as exc:
            raise translate_error(exc, self._settings) from None
        return data.num_rows

    def _writable(self) -> None:
        if self.read_only:
            raise RscaleError(
                "the Snowflake warehouse was opened read-only, so it cannot be written",
                fix="open it with connect(config, read_only=False) where the step writes",
            )

    def _cursor_run(self, sql: str, params: list[Any] | None = None) -> Any:
        try:
            return self._connection.cursor().execute(sql, params)
        except Exception as exc:
            raise translate_error(exc, self._settings, sql=sql) from None

    # -- lifetime ------------------------------------------------------------------------------------

    def close(self) -> None:
        import atexit

        try:
            self._session.close()
        except Exception:  # noqa: S110 - fakesnow lacks SYSTEM$CANCEL_ALL_QUERIES; the connection closes below
            pass
        finally:
            self._connection.close()
            # Snowpark closes every session again at interpreter exit, cancelling its queries over the network;
            # when the server is gone by then, that request is retried without end and the process never exits.
            atexit.unregister(self._session._close_at_exit)

    def __enter__(self) -> SnowflakeWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._settings.get("account") or self._settings.get("connection_name")
        return f"SnowflakeWarehouse({where}, read_only={self.read_only})"


def _connector_environment() -> None:
    """Settings the connector reads only from the environment: its login retries, and where it caches OCSP
    answers and SSO tokens (the home folder by default; rscale keeps state under .rs/)."""
    from rscale.paths import state_dir

    os.environ.setdefault("MAX_CON_RETRY_ATTEMPTS", str(LOGIN_RETRIES))
    folder = state_dir() / "snowflake"
    folder.mkdir(exist_ok=True)
    os.environ.setdefault("SF_OCSP_RESPONSE_CACHE_DIR", str(folder))
    os.environ.setdefault("SF_TEMPORARY_CREDENTIAL_CACHE_DIR", str(folder))


# -- names -------------------------------------------------------------------------------------------------

SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def normalize_name(name: str) -> str:
    """A name as Snowflake reports it -> as rscale uses it: `SESSION_ID` -> `session_id`; `"MixedCase"` stays."""
    return name.lower() if SIMPLE_NAME.match(name) and name == name.upper() else name


def _raw_name(name: str) -> str:
    # Snowpark reports a name that needed quotes with its quotes ('"session_id"').
    if len(name) > 1 and name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def _stored_name(name: str) -> str:
    """The name Snowflake stores for a name written in a spec: plain names upper-cased, quoted kept as is."""
    name = name.strip()
    if len(name) > 1 and name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name.upper() if SIMPLE_NAME.match(name) else name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_sql(table: str) -> str:
    return ".".join(_quote(_stored_name(part)) for part in table.split("."))


def tables_read(sql: str) -> set[tuple[str | None, str | None, str]] | None:
    """(database, schema, table) of each table a Snowflake query reads, as Snowflake stores the names, without
    the query's own CTE names; None when sqlglot cannot tell (a table function, or SQL it cannot parse)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        tree = sqlglot.parse_one(sql, read="snowflake")
    except ParseError:
        return None
    ctes = {cte.alias_or_name.upper() for cte in tree.find_all(exp.CTE)}
    found: set[tuple[str | None, str | None, str]] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            return None
        if not table.db and table.name.upper() in ctes:
            continue
        parts = [table.args.get(key) for key in ("catalog", "db", "this")]
        names = [None if p is None else (p.name if p.quoted else p.name.upper()) for p in parts]
        found.add((names[0], names[1], str(names[2])))
    return found


# -- types -------------------------------------------------------------------------------------------------


def duckdb_type_name(datatype: Any) -> str:
    """A Snowpark type in DuckDB's spelling, so `schema()` reads alike on both warehouses."""
    from snowflake.snowpark import types as t

    simple = {
        t.LongType: "BIGINT",
        t.IntegerType: "INTEGER",
        t.ShortType: "SMALLINT",
        t.ByteType: "TINYINT",
        t.DoubleType: "DOUBLE",
        t.FloatType: "DOUBLE",
        t.StringType: "VARCHAR",
        t.BooleanType: "BOOLEAN",
        t.DateType: "DATE",
        t.TimeType: "TIME",
        t.BinaryType: "BLOB",
        t.VariantType: "JSON",
        t.MapType: "JSON",
    }
    for kind, name in simple.items():
        if isinstance(datatype, kind):
            return name
    if isinstance(datatype, t.DecimalType):
        return "BIGINT" if datatype.scale == 0 and datatype.precision >= 18 else f"DECIMAL({datatype.precision},{datatype.scale})"
    if isinstance(datatype, t.TimestampType):
        tz = getattr(datatype, "tz", None)
        return "TIMESTAMP" if tz is None or str(getattr(tz, "value", tz)).lower() in ("ntz", "default") else "TIMESTAMP WITH TIME ZONE"
    if isinstance(datatype, t.ArrayType):
        element = getattr(datatype, "element_type", None)
        return f"{duckdb_type_name(element) if element is not None else 'JSON'}[]"
    if isinstance(datatype, t.StructType):
        return "JSON"
    return type(datatype).__name__.removesuffix("Type").upper()


def _arrow_type(datatype: Any) -> pa.DataType:
    import pyarrow as pa
    from snowflake.snowpark import types as t

    mapping = [
        (t.LongType, pa.int64()),
        (t.IntegerType, pa.int32()),
        (t.ShortType, pa.int16()),
        (t.ByteType, pa.int8()),
        (t.DoubleType, pa.float64()),
        (t.FloatType, pa.float64()),
        (t.BooleanType, pa.bool_()),
        (t.DateType, pa.date32()),
        (t.TimestampType, pa.timestamp("ns")),
        (t.BinaryType, pa.binary()),
    ]
    for kind, arrow in mapping:
        if isinstance(datatype, kind):
            return arrow
    if isinstance(datatype, t.DecimalType):
        return pa.int64() if datatype.scale == 0 else pa.float64()
    return pa.string()


def _as_rscale_table(table: pa.Table) -> pa.Table:
    """Lower-case Snowflake's upper-cased names, and turn ARRAY columns (JSON text on the wire) into lists."""
    import pyarrow as pa

    columns, names = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_string(column.type) and _holds_arrays(field, column):
            # DuckDB gives lists for arrays; parse Snowflake's JSON text so both give the same table.
            column = pa.chunked_array([pa.array([None if v is None else json.loads(v) for v in column.to_pylist()])])
        columns.append(column)
        names.append(normalize_name(field.name))
    return pa.Table.from_arrays(columns, names=names)


def _holds_arrays(field: pa.Field, column: pa.ChunkedArray) -> bool:
    """An ARRAY column, by the logicalType Snowflake puts on each Arrow field. fakesnow labels ARRAY_AGG's
    result VARIANT, so a VARIANT column whose every value is a JSON array counts too."""
    import pyarrow.compute as pc

    logical = (field.metadata or {}).get(b"logicalType", b"").decode().upper()
    if logical == "ARRAY":
        return True
    if logical != "VARIANT" or column.null_count == len(column):
        return False
    present = column.drop_null()
    return bool(pc.all(pc.starts_with(pc.utf8_trim_whitespace(present), "[")).as_py())


def _stored_columns(data: pa.Table) -> pa.Table:
    return data.rename_columns([_stored_name(name) for name in data.column_names])


def _columns_ddl(schema: pa.Schema) -> str:
    return ", ".join(f"{_quote(field.name)} {_snowflake_type(field.type)}" for field in schema)


def _snowflake_type(arrow: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(arrow):
        return "BOOLEAN"
    if pa.types.is_integer(arrow):
        return "NUMBER(38,0)"
    if pa.types.is_floating(arrow):
        return "FLOAT"
    if pa.types.is_decimal(arrow):
        return f"NUMBER({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMP_TZ" if arrow.tz else "TIMESTAMP_NTZ"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_time(arrow):
        return "TIME"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return "BINARY"
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow) or pa.types.is_fixed_size_list(arrow):
        return "ARRAY"
    if pa.types.is_struct(arrow) or pa.types.is_map(arrow):
        return "OBJECT"
    return "VARCHAR"
