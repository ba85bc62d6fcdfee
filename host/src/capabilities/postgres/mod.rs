//! Outbound PostgreSQL: `fermyon:spin/postgres@2.0.0`, `spin:postgres/postgres@3.0.0` and
//! `@4.0.0`, over tokio-postgres (plain TCP).
//!
//! As in Spin, `open` is allowed only when every host of the connection string is granted by
//! the component's `allowed_outbound_hosts` as `postgres://host:port`; otherwise the guest
//! gets `connection-failed("address postgres://… is not permitted")`. Each `open` makes its
//! own connection, closed when the guest drops the handle. Values travel through one
//! version-independent [`PgValue`]; each WIT version converts to and from it, and a value a
//! version cannot express comes back as `unsupported`, never a trap; the conversions and
//! the three generated `Host` impls live in [`versions`].

use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use wasmtime::component::{Linker, Resource};

use crate::allowed_hosts::default_port;
use crate::bindings::{postgres_v2 as v2, postgres_v3 as v3, postgres_v4 as v4};
use crate::state::HostState;

mod versions;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The resource behind a guest's postgres `connection` handle.
pub struct PgConnection {
    client: tokio_postgres::Client,
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    v2::add_to_linker::<_, super::Data>(linker, |s| s)?;
    v3::add_to_linker::<_, super::Data>(linker, |s| s)?;
    v4::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

/// Version-independent errors, converted to each version's `error`.
enum PgError {
    ConnectionFailed(String),
    BadParameter(String),
    QueryFailed(tokio_postgres::Error),
}

/// `e` with its causes: tokio-postgres' own message is only its kind ("db error", "error
/// connecting to server"), and the guest needs the why (the server's message, "Connection
/// refused").
fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A parameter or a column value.
#[derive(Debug)]
enum PgValue {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    DateTime(NaiveDateTime),
    Timestamp(i64),
    Uuid(uuid::Uuid),
    Json(serde_json::Value),
    ArrayI32(Vec<Option<i32>>),
    ArrayI64(Vec<Option<i64>>),
    ArrayStr(Vec<Option<String>>),
    Null,
    /// A column type no version maps: its raw wire bytes.
    Unsupported(Vec<u8>),
}

/// A column's type, named as the newest WIT version names it.
enum PgType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Str,
    Binary,
    Date,
    Time,
    DateTime,
    Uuid,
    Json,
    ArrayI32,
    ArrayI64,
    ArrayStr,
    Other(String),
}

impl PgType {
    fn of(ty: &Type) -> PgType {
        match *ty {
            Type::BOOL => PgType::Bool,
            Type::CHAR => PgType::I8,
            Type::INT2 => PgType::I16,
            Type::INT4 => PgType::I32,
            Type::INT8 => PgType::I64,
            Type::FLOAT4 => PgType::F32,
            Type::FLOAT8 => PgType::F64,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => PgType::Str,
            Type::BYTEA => PgType::Binary,
            Type::DATE => PgType::Date,
            Type::TIME => PgType::Time,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => PgType::DateTime,
            Type::UUID => PgType::Uuid,
            Type::JSON | Type::JSONB => PgType::Json,
            Type::INT4_ARRAY => PgType::ArrayI32,
            Type::INT8_ARRAY => PgType::ArrayI64,
            Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => PgType::ArrayStr,
            ref other => PgType::Other(other.name().to_owned()),
        }
    }
}

/// A typeless NULL parameter: accepted for any column type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}

/// The raw bytes of a value of a type Tessera does not map.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

impl PgValue {
    fn to_sql(&self) -> Box<dyn ToSql + Sync + Send + '_> {
        match self {
            PgValue::Bool(v) => Box::new(v),
            PgValue::I8(v) => Box::new(v),
            PgValue::I16(v) => Box::new(v),
            PgValue::I32(v) => Box::new(v),
            PgValue::I64(v) | PgValue::Timestamp(v) => Box::new(v),
            PgValue::F32(v) => Box::new(v),
            PgValue::F64(v) => Box::new(v),
            PgValue::Str(v) => Box::new(v),
            PgValue::Binary(v) | PgValue::Unsupported(v) => Box::new(v),
            PgValue::Date(v) => Box::new(v),
            PgValue::Time(v) => Box::new(v),
            PgValue::DateTime(v) => Box::new(v),
            PgValue::Uuid(v) => Box::new(v),
            PgValue::Json(v) => Box::new(v),
            PgValue::ArrayI32(v) => Box::new(v),
            PgValue::ArrayI64(v) => Box::new(v),
            PgValue::ArrayStr(v) => Box::new(v),
            PgValue::Null => Box::new(Null),
        }
    }

    fn from_row(row: &tokio_postgres::Row, i: usize) -> Result<PgValue, tokio_postgres::Error> {
        fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> PgValue) -> PgValue {
            v.map_or(PgValue::Null, f)
        }
        let ty = row.columns()[i].type_();
        Ok(match PgType::of(ty) {
            PgType::Bool => opt(row.try_get(i)?, PgValue::Bool),
            PgType::I8 => opt(row.try_get(i)?, PgValue::I8),
            PgType::I16 => opt(row.try_get(i)?, PgValue::I16),
            PgType::I32 => opt(row.try_get(i)?, PgValue::I32),
            PgType::I64 => opt(row.try_get(i)?, PgValue::I64),
            PgType::F32 => opt(row.try_get(i)?, PgValue::F32),
            PgType::F64 => opt(row.try_get(i)?, PgValue::F64),
            PgType::Str => opt(row.try_get(i)?, PgValue::Str),
            PgType::Binary => opt(row.try_get(i)?, PgValue::Binary),
            PgType::Date => opt(row.try_get(i)?, PgValue::Date),
            PgType::Time => opt(row.try_get(i)?, PgValue::Time),
            PgType::DateTime if *ty == Type::TIMESTAMPTZ => opt(
                row.try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)?,
                |t| PgValue::DateTime(t.naive_utc()),
            ),
            PgType::DateTime => opt(row.try_get(i)?, PgValue::DateTime),
            PgType::Uuid => opt(row.try_get(i)?, PgValue::Uuid),
            PgType::Json => opt(row.try_get(i)?, PgValue::Json),
            PgType::ArrayI32 => opt(row.try_get(i)?, PgValue::ArrayI32),
            PgType::ArrayI64 => opt(row.try_get(i)?, PgValue::ArrayI64),
            PgType::ArrayStr => opt(row.try_get(i)?, PgValue::ArrayStr),
            PgType::Other(_) => opt(row.try_get::<_, Option<Raw>>(i)?, |r| {
                PgValue::Unsupported(r.0)
            }),
        })
    }
}

fn date(y: i32, m: u8, d: u8) -> Result<NaiveDate, PgError> {
    NaiveDate::from_ymd_opt(y, m.into(), d.into())
        .ok_or_else(|| PgError::BadParameter(format!("invalid date {y}-{m}-{d}")))
}

fn time(h: u8, m: u8, s: u8, ns: u32) -> Result<NaiveTime, PgError> {
    NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns)
        .ok_or_else(|| PgError::BadParameter(format!("invalid time {h}:{m}:{s}.{ns}")))
}

type DateTimeTuple = (i32, u8, u8, u8, u8, u8, u32);

fn datetime((y, mo, d, h, mi, s, ns): DateTimeTuple) -> Result<NaiveDateTime, PgError> {
    Ok(date(y, mo, d)?.and_time(time(h, mi, s, ns)?))
}

fn date_tuple(d: NaiveDate) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day() as u8)
}

fn time_tuple(t: NaiveTime) -> (u8, u8, u8, u32) {
    (
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    )
}

fn datetime_tuple(t: NaiveDateTime) -> DateTimeTuple {
    let (y, mo, d) = date_tuple(t.date());
    let (h, mi, s, ns) = time_tuple(t.time());
    (y, mo, d, h, mi, s, ns)
}

/// The `postgres://host:port` destinations of a connection string (URL or `key=value`).
fn destinations(config: &tokio_postgres::Config) -> Vec<(String, u16)> {
    let ports = config.get_ports();
    let default = default_port("postgres").unwrap_or(5432);
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = match ports {
                [] => default,
                [one] => *one,
                many => many.get(i).copied().unwrap_or(default),
            };
            let host = match host {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                // A Unix socket is never an allowed outbound host.
                #[allow(unreachable_patterns)]
                other => format!("{other:?}"),
            };
            (host, port)
        })
        .collect()
}

impl HostState {
    async fn pg_open(
        &mut self,
        address: &str,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, PgError>> {
        let mut config: tokio_postgres::Config = match address.parse() {
            Ok(config) => config,
            Err(e) => {
                return Ok(Err(PgError::ConnectionFailed(format!(
                    "invalid address: {e}"
                ))));
            }
        };
        let targets = destinations(&config);
        let allowed = &self.component.spec.allowed_hosts;
        let denied = match targets.is_empty() {
            true => Some((String::new(), 0)),
            false => targets
                .into_iter()
                .find(|(host, port)| !allowed.allows("postgres", host, *port)),
        };
        if let Some((host, port)) = denied {
            tracing::warn!(component = %self.component.spec.id, %host, port, "postgres open denied: address not in allowed_outbound_hosts");
            return Ok(Err(PgError::ConnectionFailed(format!(
                "address postgres://{host}:{port} is not permitted"
            ))));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
            Ok(pair) => pair,
            Err(e) => return Ok(Err(PgError::ConnectionFailed(describe(&e)))),
        };
        let component = self.component.spec.id.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%component, "postgres connection closed: {e}");
            }
        });
        Ok(Ok(self.table.push(PgConnection { client })?))
    }

    async fn pg_query(
        &mut self,
        conn: &Resource<PgConnection>,
        statement: &str,
        params: Result<Vec<PgValue>, PgError>,
    ) -> wasmtime::Result<Result<RowSet, PgError>> {
        let client = &self.table.get(conn)?.client;
        let params = match params {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        Ok(query(client, statement, &params).await)
    }

    async fn pg_execute(
        &mut self,
        conn: &Resource<PgConnection>,
        statement: &str,
        params: Result<Vec<PgValue>, PgError>,
    ) -> wasmtime::Result<Result<u64, PgError>> {
        let client = &self.table.get(conn)?.client;
        let params = match params {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        let boxed: Vec<_> = params.iter().map(PgValue::to_sql).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| &**b as _).collect();
        Ok(client
            .execute(statement, &refs)
            .await
            .map_err(PgError::QueryFailed))
    }

    fn pg_close(&mut self, conn: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

struct RowSet {
    columns: Vec<(String, PgType)>,
    rows: Vec<Vec<PgValue>>,
}

async fn query(
    client: &tokio_postgres::Client,
    statement: &str,
    params: &[PgValue],
) -> Result<RowSet, PgError> {
    // Prepared first so the columns are known even when no row comes back.
    let prepared = client
        .prepare(statement)
        .await
        .map_err(PgError::QueryFailed)?;
    let boxed: Vec<_> = params.iter().map(PgValue::to_sql).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| &**b as _).collect();
    let rows = client
        .query(&prepared, &refs)
        .await
        .map_err(PgError::QueryFailed)?;
    let columns = prepared
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), PgType::of(c.type_())))
        .collect::<Vec<_>>();
    let rows = rows
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| PgValue::from_row(row, i))
                .collect()
        })
        .collect::<Result<_, _>>()
        .map_err(PgError::QueryFailed)?;
    Ok(RowSet { columns, rows })
}
