//! The three postgres WIT versions on top of the version-independent core in `super`:
//! conversions of parameters, values, column types and errors, and the `Host` impls.

use wasmtime::component::Resource;

use super::{
    PgConnection, PgError, PgType, PgValue, date, date_tuple, datetime, datetime_tuple, time,
    time_tuple,
};
use crate::bindings::{postgres_v2 as v2, postgres_v3 as v3, postgres_v4 as v4, rdbms_types};
use crate::state::HostState;

// ---- spin:postgres/postgres@4.0.0 ----

impl From<PgError> for v4::Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::ConnectionFailed(m) => v4::Error::ConnectionFailed(m),
            PgError::BadParameter(m) => v4::Error::BadParameter(m),
            PgError::QueryFailed(e) => v4::Error::QueryFailed(match e.as_db_error() {
                Some(db) => v4::QueryError::DbError(v4::DbError {
                    as_text: super::describe(&e),
                    severity: db.severity().to_owned(),
                    code: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                    detail: db.detail().map(str::to_owned),
                    extras: db
                        .hint()
                        .map(|h| vec![("hint".to_owned(), h.to_owned())])
                        .unwrap_or_default(),
                }),
                None => v4::QueryError::Text(super::describe(&e)),
            }),
        }
    }
}

fn v4_param(p: v4::ParameterValue) -> Result<PgValue, PgError> {
    use v4::ParameterValue as P;
    let unsupported = |what: &str| {
        Err(PgError::BadParameter(format!(
            "{what} parameters are not supported by Tessera"
        )))
    };
    Ok(match p {
        P::Boolean(v) => PgValue::Bool(v),
        P::Int8(v) => PgValue::I8(v),
        P::Int16(v) => PgValue::I16(v),
        P::Int32(v) => PgValue::I32(v),
        P::Int64(v) => PgValue::I64(v),
        P::Floating32(v) => PgValue::F32(v),
        P::Floating64(v) => PgValue::F64(v),
        P::Str(v) => PgValue::Str(v),
        P::Binary(v) => PgValue::Binary(v),
        P::Date((y, m, d)) => PgValue::Date(date(y, m, d)?),
        P::Time((h, m, s, ns)) => PgValue::Time(time(h, m, s, ns)?),
        P::Datetime(t) => PgValue::DateTime(datetime(t)?),
        P::Timestamp(v) => PgValue::Timestamp(v),
        P::Uuid(v) => PgValue::Uuid(
            v.parse()
                .map_err(|e| PgError::BadParameter(format!("invalid uuid {v:?}: {e}")))?,
        ),
        P::Jsonb(v) => PgValue::Json(
            serde_json::from_slice(&v)
                .map_err(|e| PgError::BadParameter(format!("invalid jsonb: {e}")))?,
        ),
        P::ArrayInt32(v) => PgValue::ArrayI32(v),
        P::ArrayInt64(v) => PgValue::ArrayI64(v),
        P::ArrayStr(v) => PgValue::ArrayStr(v),
        P::DbNull => PgValue::Null,
        P::Decimal(_) | P::ArrayDecimal(_) => return unsupported("decimal"),
        P::RangeInt32(_) | P::RangeInt64(_) | P::RangeDecimal(_) => return unsupported("range"),
        P::Interval(_) => return unsupported("interval"),
    })
}

fn v4_value(v: PgValue) -> v4::DbValue {
    use v4::DbValue as D;
    match v {
        PgValue::Bool(v) => D::Boolean(v),
        PgValue::I8(v) => D::Int8(v),
        PgValue::I16(v) => D::Int16(v),
        PgValue::I32(v) => D::Int32(v),
        PgValue::I64(v) => D::Int64(v),
        PgValue::F32(v) => D::Floating32(v),
        PgValue::F64(v) => D::Floating64(v),
        PgValue::Str(v) => D::Str(v),
        PgValue::Binary(v) => D::Binary(v),
        PgValue::Date(d) => D::Date(date_tuple(d)),
        PgValue::Time(t) => D::Time(time_tuple(t)),
        PgValue::DateTime(t) => D::Datetime(datetime_tuple(t)),
        PgValue::Timestamp(v) => D::Timestamp(v),
        PgValue::Uuid(v) => D::Uuid(v.to_string()),
        PgValue::Json(v) => D::Jsonb(v.to_string().into_bytes()),
        PgValue::ArrayI32(v) => D::ArrayInt32(v),
        PgValue::ArrayI64(v) => D::ArrayInt64(v),
        PgValue::ArrayStr(v) => D::ArrayStr(v),
        PgValue::Null => D::DbNull,
        PgValue::Unsupported(raw) => D::Unsupported(raw),
    }
}

fn v4_type(t: PgType) -> v4::DbDataType {
    use v4::DbDataType as T;
    match t {
        PgType::Bool => T::Boolean,
        PgType::I8 => T::Int8,
        PgType::I16 => T::Int16,
        PgType::I32 => T::Int32,
        PgType::I64 => T::Int64,
        PgType::F32 => T::Floating32,
        PgType::F64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        PgType::Date => T::Date,
        PgType::Time => T::Time,
        PgType::DateTime => T::Datetime,
        PgType::Uuid => T::Uuid,
        PgType::Json => T::Jsonb,
        PgType::ArrayI32 => T::ArrayInt32,
        PgType::ArrayI64 => T::ArrayInt64,
        PgType::ArrayStr => T::ArrayStr,
        PgType::Other(name) => T::Other(name),
    }
}

// ---- spin:postgres/postgres@3.0.0 ----

impl From<PgError> for v3::Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::ConnectionFailed(m) => v3::Error::ConnectionFailed(m),
            PgError::BadParameter(m) => v3::Error::BadParameter(m),
            PgError::QueryFailed(e) => v3::Error::QueryFailed(super::describe(&e)),
        }
    }
}

fn v3_param(p: v3::ParameterValue) -> Result<PgValue, PgError> {
    use v3::ParameterValue as P;
    Ok(match p {
        P::Boolean(v) => PgValue::Bool(v),
        P::Int8(v) => PgValue::I8(v),
        P::Int16(v) => PgValue::I16(v),
        P::Int32(v) => PgValue::I32(v),
        P::Int64(v) => PgValue::I64(v),
        P::Floating32(v) => PgValue::F32(v),
        P::Floating64(v) => PgValue::F64(v),
        P::Str(v) => PgValue::Str(v),
        P::Binary(v) => PgValue::Binary(v),
        P::Date((y, m, d)) => PgValue::Date(date(y, m, d)?),
        P::Time((h, m, s, ns)) => PgValue::Time(time(h, m, s, ns)?),
        P::Datetime(t) => PgValue::DateTime(datetime(t)?),
        P::Timestamp(v) => PgValue::Timestamp(v),
        P::DbNull => PgValue::Null,
    })
}

fn v3_value(v: PgValue) -> v3::DbValue {
    use v3::DbValue as D;
    match v {
        PgValue::Bool(v) => D::Boolean(v),
        PgValue::I8(v) => D::Int8(v),
        PgValue::I16(v) => D::Int16(v),
        PgValue::I32(v) => D::Int32(v),
        PgValue::I64(v) => D::Int64(v),
        PgValue::F32(v) => D::Floating32(v),
        PgValue::F64(v) => D::Floating64(v),
        PgValue::Str(v) => D::Str(v),
        PgValue::Binary(v) => D::Binary(v),
        PgValue::Date(d) => D::Date(date_tuple(d)),
        PgValue::Time(t) => D::Time(time_tuple(t)),
        PgValue::DateTime(t) => D::Datetime(datetime_tuple(t)),
        PgValue::Timestamp(v) => D::Timestamp(v),
        PgValue::Null => D::DbNull,
        _ => D::Unsupported,
    }
}

fn v3_type(t: PgType) -> v3::DbDataType {
    use v3::DbDataType as T;
    match t {
        PgType::Bool => T::Boolean,
        PgType::I8 => T::Int8,
        PgType::I16 => T::Int16,
        PgType::I32 => T::Int32,
        PgType::I64 => T::Int64,
        PgType::F32 => T::Floating32,
        PgType::F64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        PgType::Date => T::Date,
        PgType::Time => T::Time,
        PgType::DateTime => T::Datetime,
        _ => T::Other,
    }
}

// ---- fermyon:spin/postgres@2.0.0 (rdbms-types) ----

impl From<PgError> for rdbms_types::Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::ConnectionFailed(m) => rdbms_types::Error::ConnectionFailed(m),
            PgError::BadParameter(m) => rdbms_types::Error::BadParameter(m),
            PgError::QueryFailed(e) => rdbms_types::Error::QueryFailed(super::describe(&e)),
        }
    }
}

fn v2_param(p: rdbms_types::ParameterValue) -> Result<PgValue, PgError> {
    use rdbms_types::ParameterValue as P;
    Ok(match p {
        P::Boolean(v) => PgValue::Bool(v),
        P::Int8(v) => PgValue::I8(v),
        P::Int16(v) => PgValue::I16(v),
        P::Int32(v) => PgValue::I32(v),
        P::Int64(v) => PgValue::I64(v),
        P::Floating32(v) => PgValue::F32(v),
        P::Floating64(v) => PgValue::F64(v),
        P::Str(v) => PgValue::Str(v),
        P::Binary(v) => PgValue::Binary(v),
        P::DbNull => PgValue::Null,
        P::Uint8(_) | P::Uint16(_) | P::Uint32(_) | P::Uint64(_) => {
            return Err(PgError::BadParameter(
                "postgres does not support unsigned integers".into(),
            ));
        }
    })
}

fn v2_value(v: PgValue) -> rdbms_types::DbValue {
    use rdbms_types::DbValue as D;
    match v {
        PgValue::Bool(v) => D::Boolean(v),
        PgValue::I8(v) => D::Int8(v),
        PgValue::I16(v) => D::Int16(v),
        PgValue::I32(v) => D::Int32(v),
        PgValue::I64(v) => D::Int64(v),
        PgValue::F32(v) => D::Floating32(v),
        PgValue::F64(v) => D::Floating64(v),
        PgValue::Str(v) => D::Str(v),
        PgValue::Binary(v) => D::Binary(v),
        PgValue::Null => D::DbNull,
        _ => D::Unsupported,
    }
}

fn v2_type(t: PgType) -> rdbms_types::DbDataType {
    use rdbms_types::DbDataType as T;
    match t {
        PgType::Bool => T::Boolean,
        PgType::I8 => T::Int8,
        PgType::I16 => T::Int16,
        PgType::I32 => T::Int32,
        PgType::I64 => T::Int64,
        PgType::F32 => T::Floating32,
        PgType::F64 => T::Floating64,
        PgType::Str => T::Str,
        PgType::Binary => T::Binary,
        _ => T::Other,
    }
}

// ---- the Host impls, the same for every version ----

/// The `Host` impls of one WIT version: the same calls into the core, with that
/// version's interface (`$iface`), types (`$types`) and conversions.
macro_rules! host_connection {
    ($iface:ident, $types:ident, $param:ident, $value:ident, $type_of:ident) => {
        impl $iface::Host for HostState {}

        impl $iface::HostConnection for HostState {
            async fn open(
                &mut self,
                address: String,
            ) -> wasmtime::Result<Result<Resource<PgConnection>, $types::Error>> {
                Ok(self.pg_open(&address).await?.map_err(Into::into))
            }

            async fn query(
                &mut self,
                conn: Resource<PgConnection>,
                statement: String,
                params: Vec<$types::ParameterValue>,
            ) -> wasmtime::Result<Result<$types::RowSet, $types::Error>> {
                let params = params.into_iter().map($param).collect();
                let result = self.pg_query(&conn, &statement, params).await?;
                Ok(result.map_err(Into::into).map(|set| $types::RowSet {
                    columns: set
                        .columns
                        .into_iter()
                        .map(|(name, t)| $types::Column {
                            name,
                            data_type: $type_of(t),
                        })
                        .collect(),
                    rows: set
                        .rows
                        .into_iter()
                        .map(|row| row.into_iter().map($value).collect())
                        .collect(),
                }))
            }

            async fn execute(
                &mut self,
                conn: Resource<PgConnection>,
                statement: String,
                params: Vec<$types::ParameterValue>,
            ) -> wasmtime::Result<Result<u64, $types::Error>> {
                let params = params.into_iter().map($param).collect();
                Ok(self
                    .pg_execute(&conn, &statement, params)
                    .await?
                    .map_err(Into::into))
            }

            async fn drop(&mut self, conn: Resource<PgConnection>) -> wasmtime::Result<()> {
                self.pg_close(conn)
            }
        }
    };
}

host_connection!(v4, v4, v4_param, v4_value, v4_type);
host_connection!(v3, v3, v3_param, v3_value, v3_type);
host_connection!(v2, rdbms_types, v2_param, v2_value, v2_type);
