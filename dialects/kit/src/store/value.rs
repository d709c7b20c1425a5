//! What goes into a statement and what comes out of a row, the same for both
//! backends: [`Param`] (borrowed, so binding copies nothing), [`Value`] (owned, for
//! parameters built ahead), [`Row`] and [`FromColumn`].
//!
//! The SQL both backends run is written with PostgreSQL's numbered placeholders
//! (`$1`, `$2`, …); the SQLite backend reads them as SQLite's `?1`, `?2`, ….
//! Integers are 64-bit on both sides: PostgreSQL columns that hold them are
//! `BIGINT` (or narrower, or `BOOLEAN`: a parameter is converted to the column's
//! type, and refused when it does not fit).

use bytes::Bytes;

use super::StoreError;

/// One statement parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// An owned parameter, for parameter lists built before the statement runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// Anything that binds as a [`Param`].
pub trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

/// `[Param; N]` from expressions of any [`ToParam`] type, borrowed where they can be:
/// `tx.execute("... $1, $2", &params![name, now_ms()])`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::ToParam::to_param(&$value)),*]
    };
}

impl ToParam for Param<'_> {
    fn to_param(&self) -> Param<'_> {
        *self
    }
}

impl ToParam for Value {
    fn to_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Int(v) => Param::Int(*v),
            Value::Text(v) => Param::Text(v),
            Value::Blob(v) => Param::Blob(v),
        }
    }
}

macro_rules! int_params {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param<'_> {
                Param::Int(i64::from(*self))
            }
        }
    )*};
}
int_params!(i64, i32, u32, u16, u8, bool);

impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl ToParam for Bytes {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Null, ToParam::to_param)
    }
}

/// One cell of a result row, as either backend gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Column<'r> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'r str),
    Blob(&'r [u8]),
}

/// A result row. Columns are numbered from 0.
pub struct Row<'r> {
    pub(super) inner: RowRef<'r>,
}

pub(super) enum RowRef<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `index` as a `T`; an error names the column when it does not convert.
    pub fn get<T: FromColumn>(&self, index: usize) -> Result<T, StoreError> {
        let column = match &self.inner {
            RowRef::Sqlite(row) => super::sqlite::column(row, index)?,
            RowRef::Postgres(row) => super::postgres::column(row, index)?,
        };
        T::from_column(column).map_err(|message| StoreError::Column { index, message })
    }
}

/// A Rust type a column converts to.
pub trait FromColumn: Sized {
    fn from_column(column: Column<'_>) -> Result<Self, String>;
}

fn mismatch(wanted: &str, column: Column<'_>) -> String {
    let found = match column {
        Column::Null => "NULL",
        Column::Int(_) => "an integer",
        Column::Real(_) => "a real",
        Column::Text(_) => "text",
        Column::Blob(_) => "a blob",
    };
    format!("wanted {wanted}, found {found}")
}

impl FromColumn for i64 {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Int(v) => Ok(v),
            other => Err(mismatch("an integer", other)),
        }
    }
}

macro_rules! narrow_columns {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn from_column(column: Column<'_>) -> Result<Self, String> {
                let v = i64::from_column(column)?;
                <$t>::try_from(v).map_err(|_| format!("{v} is out of range of {}", stringify!($t)))
            }
        }
    )*};
}
narrow_columns!(i32, u32, u16, u8);

impl FromColumn for bool {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        i64::from_column(column).map(|v| v != 0)
    }
}

impl FromColumn for f64 {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Real(v) => Ok(v),
            Column::Int(v) => Ok(v as f64),
            other => Err(mismatch("a number", other)),
        }
    }
}

impl FromColumn for String {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Text(v) => Ok(v.to_string()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromColumn for Vec<u8> {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Blob(v) => Ok(v.to_vec()),
            // SQLite keeps what it was given; text written as a blob reads back as text.
            Column::Text(v) => Ok(v.as_bytes().to_vec()),
            other => Err(mismatch("a blob", other)),
        }
    }
}

impl FromColumn for Bytes {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        Vec::<u8>::from_column(column).map(Bytes::from)
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(column: Column<'_>) -> Result<Self, String> {
        match column {
            Column::Null => Ok(None),
            other => T::from_column(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_borrow_and_convert() {
        let name = String::from("n");
        let none: Option<&str> = None;
        let blob = b"ab".as_slice();
        let p = crate::params![name, 7u16, true, none, Some(3i64), blob];
        assert_eq!(
            p,
            [
                Param::Text("n"),
                Param::Int(7),
                Param::Int(1),
                Param::Null,
                Param::Int(3),
                Param::Blob(b"ab")
            ]
        );
        assert_eq!(Value::Text("x".into()).to_param(), Param::Text("x"));
    }

    #[test]
    fn columns_convert_or_say_why_not() {
        assert_eq!(u8::from_column(Column::Int(2)), Ok(2));
        assert!(u8::from_column(Column::Int(300))
            .unwrap_err()
            .contains("out of range"));
        assert_eq!(Option::<i64>::from_column(Column::Null), Ok(None));
        assert_eq!(
            i64::from_column(Column::Null).unwrap_err(),
            "wanted an integer, found NULL"
        );
        assert!(bool::from_column(Column::Int(1)).unwrap());
        assert_eq!(
            Vec::<u8>::from_column(Column::Text("ab")),
            Ok(b"ab".to_vec())
        );
    }
}
