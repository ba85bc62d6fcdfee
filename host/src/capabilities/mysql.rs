//! Outbound MySQL / MariaDB: `fermyon:spin/mysql@2.0.0` over mysql_async (plain TCP).
//!
//! As in Spin, `open` is allowed only when the address (`mysql://user:pass@host:port/db`)
//! is granted by the component's `allowed_outbound_hosts`; otherwise the guest gets
//! `connection-failed("address mysql://… is not permitted")`. Each `open` makes its own
//! connection, closed when the guest drops the handle. Statements run as prepared
//! statements, so values come back typed by their column.

use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use wasmtime::component::{Linker, Resource};

use crate::bindings::mysql;
use crate::bindings::rdbms_types::{Column, DbDataType, DbValue, Error, ParameterValue, RowSet};
use crate::state::HostState;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// MySQL's character set number for binary data (`BINARY`, `VARBINARY`, `BLOB`).
const BINARY_CHARSET: u16 = 63;

/// The resource behind a guest's mysql `connection` handle.
pub struct MysqlConnection {
    conn: mysql_async::Conn,
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    mysql::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

fn param(p: ParameterValue) -> mysql_async::Value {
    use mysql_async::Value as V;
    match p {
        ParameterValue::Boolean(v) => V::Int(v.into()),
        ParameterValue::Int8(v) => V::Int(v.into()),
        ParameterValue::Int16(v) => V::Int(v.into()),
        ParameterValue::Int32(v) => V::Int(v.into()),
        ParameterValue::Int64(v) => V::Int(v),
        ParameterValue::Uint8(v) => V::UInt(v.into()),
        ParameterValue::Uint16(v) => V::UInt(v.into()),
        ParameterValue::Uint32(v) => V::UInt(v.into()),
        ParameterValue::Uint64(v) => V::UInt(v),
        ParameterValue::Floating32(v) => V::Float(v),
        ParameterValue::Floating64(v) => V::Double(v),
        ParameterValue::Str(v) => V::Bytes(v.into_bytes()),
        ParameterValue::Binary(v) => V::Bytes(v),
        ParameterValue::DbNull => V::NULL,
    }
}

fn is_binary(column: &mysql_async::Column) -> bool {
    column.character_set() == BINARY_CHARSET
}

fn data_type(column: &mysql_async::Column) -> DbDataType {
    let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    match (column.column_type(), unsigned) {
        (ColumnType::MYSQL_TYPE_TINY, false) => DbDataType::Int8,
        (ColumnType::MYSQL_TYPE_TINY, true) => DbDataType::Uint8,
        (ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR, false) => DbDataType::Int16,
        (ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR, true) => DbDataType::Uint16,
        (ColumnType::MYSQL_TYPE_LONG | ColumnType::MYSQL_TYPE_INT24, false) => DbDataType::Int32,
        (ColumnType::MYSQL_TYPE_LONG | ColumnType::MYSQL_TYPE_INT24, true) => DbDataType::Uint32,
        (ColumnType::MYSQL_TYPE_LONGLONG, false) => DbDataType::Int64,
        (ColumnType::MYSQL_TYPE_LONGLONG, true) => DbDataType::Uint64,
        (ColumnType::MYSQL_TYPE_FLOAT, _) => DbDataType::Floating32,
        (ColumnType::MYSQL_TYPE_DOUBLE, _) => DbDataType::Floating64,
        (
            ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_JSON,
            _,
        ) if is_binary(column) => DbDataType::Binary,
        (
            ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_BLOB
            | ColumnType::MYSQL_TYPE_JSON
            | ColumnType::MYSQL_TYPE_DECIMAL
            | ColumnType::MYSQL_TYPE_NEWDECIMAL,
            _,
        ) => DbDataType::Str,
        _ => DbDataType::Other,
    }
}

/// Converts one value by its column's type; what the column type cannot hold is
/// `unsupported`, never a trap.
fn value(v: mysql_async::Value, ty: DbDataType) -> DbValue {
    use mysql_async::Value as V;
    let unsigned = matches!(
        ty,
        DbDataType::Uint8 | DbDataType::Uint16 | DbDataType::Uint32 | DbDataType::Uint64
    );
    // The server may send an integer with either signedness: go by the column.
    let v = match v {
        V::Int(i) if unsigned => u64::try_from(i).map_or(V::Int(i), V::UInt),
        V::UInt(u) if !unsigned => i64::try_from(u).map_or(V::UInt(u), V::Int),
        v => v,
    };
    match (v, ty) {
        (V::NULL, _) => DbValue::DbNull,
        (V::Int(i), DbDataType::Int8) => {
            i8::try_from(i).map_or(DbValue::Unsupported, DbValue::Int8)
        }
        (V::Int(i), DbDataType::Int16) => {
            i16::try_from(i).map_or(DbValue::Unsupported, DbValue::Int16)
        }
        (V::Int(i), DbDataType::Int32) => {
            i32::try_from(i).map_or(DbValue::Unsupported, DbValue::Int32)
        }
        (V::Int(i), _) => DbValue::Int64(i),
        (V::UInt(u), DbDataType::Uint8) => {
            u8::try_from(u).map_or(DbValue::Unsupported, DbValue::Uint8)
        }
        (V::UInt(u), DbDataType::Uint16) => {
            u16::try_from(u).map_or(DbValue::Unsupported, DbValue::Uint16)
        }
        (V::UInt(u), DbDataType::Uint32) => {
            u32::try_from(u).map_or(DbValue::Unsupported, DbValue::Uint32)
        }
        (V::UInt(u), _) => DbValue::Uint64(u),
        (V::Float(f), _) => DbValue::Floating32(f),
        (V::Double(d), _) => DbValue::Floating64(d),
        (V::Bytes(b), DbDataType::Str) => match String::from_utf8(b) {
            Ok(s) => DbValue::Str(s),
            Err(e) => DbValue::Binary(e.into_bytes()),
        },
        (V::Bytes(b), _) => DbValue::Binary(b),
        (V::Date(..) | V::Time(..), _) => DbValue::Unsupported,
    }
}

fn query_failed(e: mysql_async::Error) -> Error {
    Error::QueryFailed(e.to_string())
}

impl HostState {
    fn mysql_conn(
        &mut self,
        conn: &Resource<MysqlConnection>,
    ) -> wasmtime::Result<&mut mysql_async::Conn> {
        Ok(&mut self.table.get_mut(conn)?.conn)
    }
}

impl mysql::Host for HostState {}

impl mysql::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<MysqlConnection>, Error>> {
        let opts = match mysql_async::Opts::from_url(&address) {
            Ok(opts) => opts,
            Err(e) => {
                return Ok(Err(Error::ConnectionFailed(format!(
                    "invalid address: {e}"
                ))));
            }
        };
        let (host, port) = (opts.ip_or_hostname().to_string(), opts.tcp_port());
        if !self
            .component
            .spec
            .allowed_hosts
            .allows("mysql", &host, port)
        {
            tracing::warn!(component = %self.component.spec.id, %host, port, "mysql open denied: address not in allowed_outbound_hosts");
            return Ok(Err(Error::ConnectionFailed(format!(
                "address mysql://{host}:{port} is not permitted"
            ))));
        }
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts)).await;
        match connect {
            Ok(Ok(conn)) => Ok(Ok(self.table.push(MysqlConnection { conn })?)),
            Ok(Err(e)) => Ok(Err(Error::ConnectionFailed(e.to_string()))),
            Err(_) => Ok(Err(Error::ConnectionFailed(format!(
                "mysql://{host}:{port} did not answer within {CONNECT_TIMEOUT:?}"
            )))),
        }
    }

    async fn query(
        &mut self,
        conn: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let conn = self.mysql_conn(&conn)?;
        let params: Vec<_> = params.into_iter().map(param).collect();
        let stmt = match conn.prep(&statement).await {
            Ok(stmt) => stmt,
            Err(e) => return Ok(Err(query_failed(e))),
        };
        let rows: Vec<mysql_async::Row> = match conn.exec(&stmt, params).await {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(query_failed(e))),
        };
        let types: Vec<DbDataType> = stmt.columns().iter().map(data_type).collect();
        let columns = stmt
            .columns()
            .iter()
            .zip(&types)
            .map(|(c, t)| Column {
                name: c.name_str().into_owned(),
                data_type: *t,
            })
            .collect();
        let rows = rows
            .into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .zip(&types)
                    .map(|(v, t)| value(v, *t))
                    .collect()
            })
            .collect();
        Ok(Ok(RowSet { columns, rows }))
    }

    async fn execute(
        &mut self,
        conn: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = self.mysql_conn(&conn)?;
        let params: Vec<_> = params.into_iter().map(param).collect();
        Ok(conn
            .exec_drop(statement, params)
            .await
            .map_err(query_failed))
    }

    async fn drop(&mut self, conn: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        let conn = self.table.delete(conn)?;
        // Say goodbye to the server off the wasm thread; a failure only means it is gone.
        tokio::spawn(async move {
            let _ = conn.conn.disconnect().await;
        });
        Ok(())
    }
}
