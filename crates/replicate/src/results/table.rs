//! A small row-oriented table that converts to and from polars DataFrames, so that runs with
//! different columns can be merged into one parquet file (union of columns, nulls elsewhere).

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{
    Column, DataFrame, DataType, KeyValueMetadata, ParquetCompression, ParquetReader, ParquetWriter, PlSmallStr,
    SerReader,
};

/// One value of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    F64(f64),
    I64(i64),
    /// An integer above i64::MAX (a seed may be any u64); smaller ones are `I64`.
    U64(u64),
    Str(String),
    Bool(bool),
    Null,
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::F64(v)
    }
}
impl From<f32> for Cell {
    fn from(v: f32) -> Self {
        Cell::F64(v as f64)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::I64(v)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        i64::try_from(v).map(Cell::I64).unwrap_or(Cell::U64(v))
    }
}
impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::I64(v as i64)
    }
}
impl From<u8> for Cell {
    fn from(v: u8) -> Self {
        Cell::I64(v as i64)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Str(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Str(v)
    }
}

impl Cell {
    /// A JSON value as a cell; arrays and objects become their JSON text.
    pub fn from_json(v: &serde_json::Value) -> Cell {
        match v {
            serde_json::Value::Null => Cell::Null,
            serde_json::Value::Bool(b) => Cell::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Cell::I64(i),
                (None, Some(u)) => Cell::U64(u),
                _ => Cell::F64(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Cell::Str(s.clone()),
            other => Cell::Str(other.to_string()),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::F64(v) => Some(*v),
            Cell::I64(v) => Some(*v as f64),
            Cell::U64(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }
}

pub type Row = Vec<(String, Cell)>;

/// Rows with named cells; columns appear in order of first appearance. `source` names where the
/// rows came from (a file's path, or what built them), so a missing column names its table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub rows: Vec<Row>,
    pub source: String,
}

impl Table {
    pub fn new(source: impl Into<String>, rows: Vec<Row>) -> Table {
        Table { rows, source: source.into() }
    }

    /// The rows with typed, checked access to their cells.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.rows.iter().map(|row| Record { row, source: &self.source })
    }

    /// The same rows, kept where `keep` holds (errors from `keep` stop the filter).
    pub fn filter(&self, mut keep: impl FnMut(Record<'_>) -> Result<bool>) -> Result<Table> {
        let mut rows = Vec::new();
        for r in self.records() {
            if keep(r)? {
                rows.push(r.row.clone());
            }
        }
        Ok(Table { rows, source: self.source.clone() })
    }

    pub fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for row in &self.rows {
            for (name, _) in row {
                if !cols.contains(name) {
                    cols.push(name.clone());
                }
            }
        }
        cols
    }

    pub fn to_frame(&self) -> Result<DataFrame> {
        let height = self.rows.len();
        let mut columns = Vec::new();
        for name in self.columns() {
            // NaN marks a value that was not measured (e.g. identification without a softmax term): null.
            let cells: Vec<&Cell> = self
                .rows
                .iter()
                .map(|r| match r.iter().find(|(n, _)| *n == name).map(|(_, c)| c) {
                    Some(Cell::F64(v)) if v.is_nan() => &Cell::Null,
                    Some(c) => c,
                    None => &Cell::Null,
                })
                .collect();
            let kinds: Vec<u8> = cells
                .iter()
                .filter_map(|c| match c {
                    Cell::F64(_) => Some(0),
                    Cell::I64(_) => Some(1),
                    Cell::Str(_) => Some(2),
                    Cell::Bool(_) => Some(3),
                    Cell::U64(_) => Some(4),
                    Cell::Null => None,
                })
                .collect();
            let all = |k: u8| kinds.iter().all(|&x| x == k);
            let pname: PlSmallStr = name.as_str().into();
            let column = if kinds.is_empty() {
                Column::new(pname, cells.iter().map(|_| None::<f64>).collect::<Vec<_>>())
            } else if all(1) {
                Column::new(
                    pname,
                    cells.iter().map(|c| if let Cell::I64(v) = c { Some(*v) } else { None }).collect::<Vec<_>>(),
                )
            } else if kinds.contains(&4)
                && cells.iter().all(|c| !matches!(c, Cell::I64(v) if *v < 0))
                && kinds.iter().all(|&k| k == 1 || k == 4)
            {
                let unsigned = |c: &Cell| match c {
                    Cell::U64(v) => Some(*v),
                    Cell::I64(v) => Some(*v as u64),
                    _ => None,
                };
                Column::new(pname, cells.iter().map(|c| unsigned(c)).collect::<Vec<_>>())
            } else if kinds.iter().all(|&k| k <= 1 || k == 4) {
                Column::new(pname, cells.iter().map(|c| c.as_f64()).collect::<Vec<_>>())
            } else if all(3) {
                Column::new(
                    pname,
                    cells.iter().map(|c| if let Cell::Bool(v) = c { Some(*v) } else { None }).collect::<Vec<_>>(),
                )
            } else {
                Column::new(
                    pname,
                    cells
                        .iter()
                        .map(|c| match c {
                            Cell::Null => None,
                            Cell::Str(s) => Some(s.clone()),
                            Cell::F64(v) => Some(v.to_string()),
                            Cell::I64(v) => Some(v.to_string()),
                            Cell::U64(v) => Some(v.to_string()),
                            Cell::Bool(v) => Some(v.to_string()),
                        })
                        .collect::<Vec<_>>(),
                )
            };
            columns.push(column);
        }
        Ok(DataFrame::new(height, columns)?)
    }

    pub fn from_frame(df: &DataFrame) -> Result<Table> {
        let mut rows: Vec<Row> = vec![Vec::with_capacity(df.width()); df.height()];
        for col in df.columns() {
            let name = col.name().to_string();
            let series = col.as_materialized_series();
            match series.dtype() {
                DataType::Float64 | DataType::Float32 => {
                    let ca = series.cast(&DataType::Float64)?;
                    for (row, v) in rows.iter_mut().zip(ca.f64()?.iter()) {
                        row.push((name.clone(), v.map(Cell::F64).unwrap_or(Cell::Null)));
                    }
                }
                DataType::UInt64 => {
                    for (row, v) in rows.iter_mut().zip(series.u64()?.iter()) {
                        row.push((name.clone(), v.map(Cell::from).unwrap_or(Cell::Null)));
                    }
                }
                DataType::Int64
                | DataType::Int32
                | DataType::UInt32
                | DataType::Int8
                | DataType::UInt8
                | DataType::Int16
                | DataType::UInt16 => {
                    let ca = series.cast(&DataType::Int64)?;
                    for (row, v) in rows.iter_mut().zip(ca.i64()?.iter()) {
                        row.push((name.clone(), v.map(Cell::I64).unwrap_or(Cell::Null)));
                    }
                }
                DataType::Boolean => {
                    for (row, v) in rows.iter_mut().zip(series.bool()?.iter()) {
                        row.push((name.clone(), v.map(Cell::Bool).unwrap_or(Cell::Null)));
                    }
                }
                DataType::String => {
                    for (row, v) in rows.iter_mut().zip(series.str()?.iter()) {
                        row.push((name.clone(), v.map(|s| Cell::Str(s.to_string())).unwrap_or(Cell::Null)));
                    }
                }
                DataType::Null => {
                    for row in rows.iter_mut() {
                        row.push((name.clone(), Cell::Null));
                    }
                }
                other => anyhow::bail!("column {name} has type {other}, which results tables do not use"),
            }
        }
        Ok(Table { rows, source: String::new() })
    }

    /// The value of `column` in `row`.
    pub fn get<'a>(row: &'a Row, column: &str) -> Option<&'a Cell> {
        row.iter().find(|(n, _)| n == column).map(|(_, c)| c)
    }
}

/// One row of a [`Table`], read by column name with the column's type checked: a column the row
/// lacks is an error naming the column and the table, never a silent "n/a".
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub row: &'a Row,
    source: &'a str,
}

impl<'a> Record<'a> {
    /// A row outside any table (`source` names it in errors).
    pub fn new(row: &'a Row, source: &'a str) -> Record<'a> {
        Record { row, source }
    }

    pub fn cell(&self, column: &str) -> Result<&'a Cell> {
        Table::get(self.row, column).with_context(|| {
            let columns: Vec<&str> = self.row.iter().map(|(n, _)| n.as_str()).collect();
            format!("{} has no column {column:?} (its columns: {})", self.source, columns.join(", "))
        })
    }

    /// A number; `None` for an empty cell. Text columns that hold numbers (a λ column with "inf"
    /// among its values is stored as text) are read as numbers.
    pub fn f64(&self, column: &str) -> Result<Option<f64>> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::F64(v) => Ok(Some(*v)),
            Cell::I64(v) => Ok(Some(*v as f64)),
            Cell::U64(v) => Ok(Some(*v as f64)),
            Cell::Str(s) if s == "inf" => Ok(Some(f64::INFINITY)),
            Cell::Str(s) => s
                .parse()
                .map(Some)
                .with_context(|| format!("column {column:?} of {} holds {s:?}, not a number", self.source)),
            Cell::Bool(b) => anyhow::bail!("column {column:?} of {} holds {b}, not a number", self.source),
        }
    }

    /// A number that must be there.
    pub fn num(&self, column: &str) -> Result<f64> {
        self.f64(column)?.with_context(|| format!("column {column:?} of {} is empty in this row", self.source))
    }

    /// Text; `None` for an empty cell.
    pub fn str(&self, column: &str) -> Result<Option<&'a str>> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Str(s) => Ok(Some(s)),
            other => anyhow::bail!("column {column:?} of {} holds {other:?}, not text", self.source),
        }
    }

    /// A true/false value that must be there.
    pub fn bool(&self, column: &str) -> Result<bool> {
        match self.cell(column)? {
            Cell::Bool(b) => Ok(*b),
            other => anyhow::bail!("column {column:?} of {} holds {other:?}, not true or false", self.source),
        }
    }

    /// Text that must be there.
    pub fn text(&self, column: &str) -> Result<&'a str> {
        self.str(column)?.with_context(|| format!("column {column:?} of {} is empty in this row", self.source))
    }

    pub fn run_id(&self) -> Result<&'a str> {
        self.text("run_id")
    }

    /// The run's seed, exactly (any u64), which pairs it with the same seed's run of another
    /// setting.
    pub fn seed(&self) -> Result<u64> {
        match self.cell("seed")? {
            Cell::U64(v) => Ok(*v),
            Cell::I64(v) if *v >= 0 => Ok(*v as u64),
            other => anyhow::bail!("column \"seed\" of {} holds {other:?}, not a seed", self.source),
        }
    }

    pub fn status(&self) -> Result<&'a str> {
        self.text("status")
    }

    pub fn finished(&self) -> Result<bool> {
        Ok(self.status()? == super::STATUS_FINISHED)
    }
}

/// Reads a parquet file into a DataFrame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file).finish().with_context(|| format!("{} is not a readable parquet file", path.display()))
}

/// The key-value metadata stored in a parquet file's footer (without the Arrow schema entry).
pub fn read_parquet_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = ParquetReader::new(file);
    let meta = reader.get_metadata().with_context(|| format!("{} is not a readable parquet file", path.display()))?;
    Ok(meta
        .key_value_metadata
        .as_ref()
        .map(|kv| {
            kv.iter()
                .filter(|k| !k.key.starts_with("ARROW:"))
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

/// Writes `df` to `path` atomically (temporary file + rename), with key-value metadata.
pub fn write_parquet(path: &Path, df: &mut DataFrame, metadata: Vec<(String, String)>) -> Result<()> {
    let mut buffer = Vec::new();
    ParquetWriter::new(&mut buffer)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(metadata)))
        .finish(df)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    crate::util::atomic_write(path, &buffer).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_parquet_with_metadata() {
        let table = Table {
            rows: vec![
                vec![
                    ("run_id".into(), "a".into()),
                    ("x".into(), 1.5.into()),
                    ("n".into(), 3i64.into()),
                    ("ok".into(), true.into()),
                    ("seed".into(), u64::MAX.into()),
                ],
                vec![
                    ("run_id".into(), "b".into()),
                    ("n".into(), 4i64.into()),
                    ("extra".into(), 2.0.into()),
                    ("seed".into(), 7u64.into()),
                ],
            ],
            source: "a test table".into(),
        };
        let dir = std::env::temp_dir().join(format!("replicate-table-{}", std::process::id()));
        let path = dir.join("t.parquet");
        write_parquet(&path, &mut table.to_frame().unwrap(), vec![("k".into(), "v".into())]).unwrap();
        let back = Table::from_frame(&read_parquet(&path).unwrap()).unwrap();
        assert_eq!(back.rows.len(), 2);
        assert_eq!(Table::get(&back.rows[0], "x"), Some(&Cell::F64(1.5)));
        assert_eq!(Table::get(&back.rows[1], "x"), Some(&Cell::Null));
        assert_eq!(Table::get(&back.rows[1], "n"), Some(&Cell::I64(4)));
        // Any u64 seed comes back exactly, beside small ones in the same column.
        assert_eq!(Table::get(&back.rows[0], "seed"), Some(&Cell::U64(u64::MAX)));
        assert_eq!(Table::get(&back.rows[1], "seed"), Some(&Cell::I64(7)));
        assert_eq!(Table::get(&back.rows[0], "ok"), Some(&Cell::Bool(true)));
        assert_eq!(read_parquet_metadata(&path).unwrap(), vec![("k".to_string(), "v".to_string())]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn records_name_the_column_and_table_they_lack() {
        let table = Table::new(
            "results/e/runs.parquet",
            vec![vec![
                ("run_id".into(), "a".into()),
                ("lambda".into(), "inf".into()),
                ("x".into(), Cell::Null),
                ("n".into(), 3i64.into()),
            ]],
        );
        let r = table.records().next().unwrap();
        assert_eq!(r.f64("lambda").unwrap(), Some(f64::INFINITY));
        assert_eq!(r.f64("x").unwrap(), None);
        assert_eq!(r.num("n").unwrap(), 3.0);
        assert_eq!(r.run_id().unwrap(), "a");
        let err = r.f64("test_acuracy").unwrap_err().to_string();
        assert!(err.contains("results/e/runs.parquet has no column \"test_acuracy\""), "{err}");
        let err = r.num("x").unwrap_err().to_string();
        assert!(err.contains("\"x\"") && err.contains("empty"), "{err}");
        let err = r.f64("run_id").unwrap_err().to_string();
        assert!(err.contains("not a number"), "{err}");
        assert!(r.str("n").is_err());
    }
}
