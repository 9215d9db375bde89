//! DSC column `type` strings and what they mean for marking.

/// The logical type of a DSC column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// An integer type with its value range.
    Integer {
        /// Smallest value of the type.
        min: i128,
        /// Largest value of the type.
        max: i128,
    },
    /// An exact decimal (`DECIMAL`, `NUMERIC`, ...), marked at each value's
    /// own scale.
    Decimal,
    /// A floating-point type, marked in the digits the value is written with.
    Float,
    /// A character type.
    Text,
    /// A calendar date; not marked (a day is a large step), never an error.
    Date,
    /// A time of day, marked in its seconds.
    Time,
    /// A date and time, marked in its seconds.
    DateTime,
}

impl ColumnType {
    /// Parses a DSC/SQL type name, case-insensitively, ignoring a size suffix
    /// such as `(10,2)` and an `UNSIGNED` qualifier. `None` for unknown types.
    ///
    /// ```
    /// use dbwatermark::dsc::ColumnType;
    /// assert_eq!(ColumnType::parse("decimal(10,2)"), Some(ColumnType::Decimal));
    /// assert_eq!(ColumnType::parse("TINYINT"), Some(ColumnType::Integer { min: -128, max: 127 }));
    /// assert_eq!(ColumnType::parse("BLOB"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        let base = name.split('(').next().unwrap_or_default();
        let mut words: Vec<String> = base
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        let unsigned = words.last().is_some_and(|w| w == "UNSIGNED");
        if unsigned {
            words.pop();
        }
        let base = words.join(" ");
        let int = |bits: u32| {
            if unsigned {
                Self::Integer {
                    min: 0,
                    max: (1i128 << bits) - 1,
                }
            } else {
                Self::Integer {
                    min: -(1i128 << (bits - 1)),
                    max: (1i128 << (bits - 1)) - 1,
                }
            }
        };
        Some(match base.as_str() {
            "TINYINT" | "INT1" => int(8),
            "SMALLINT" | "INT2" | "SMALLSERIAL" => int(16),
            "MEDIUMINT" | "INT3" => int(24),
            "INT" | "INTEGER" | "INT4" | "SERIAL" => int(32),
            "BIGINT" | "INT8" | "LONG" | "BIGSERIAL" => int(64),
            "DECIMAL" | "NUMERIC" | "NUMBER" | "DEC" | "MONEY" | "SMALLMONEY" => Self::Decimal,
            "FLOAT" | "DOUBLE" | "DOUBLE PRECISION" | "REAL" | "FLOAT4" | "FLOAT8"
            | "BINARY_FLOAT" | "BINARY_DOUBLE" => Self::Float,
            "CHAR" | "VARCHAR" | "VARCHAR2" | "NCHAR" | "NVARCHAR" | "NVARCHAR2" | "TEXT"
            | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "STRING" | "CLOB" | "NCLOB"
            | "CHARACTER" | "CHARACTER VARYING" | "BPCHAR" | "NTEXT" => Self::Text,
            "DATE" => Self::Date,
            "TIME" => Self::Time,
            "DATETIME"
            | "DATETIME2"
            | "SMALLDATETIME"
            | "TIMESTAMP"
            | "TIMESTAMPTZ"
            | "TIMESTAMP WITH TIME ZONE"
            | "TIMESTAMP WITHOUT TIME ZONE" => Self::DateTime,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_sizes_and_case_are_accepted() {
        for (name, want) in [
            (
                "int",
                ColumnType::Integer {
                    min: i32::MIN.into(),
                    max: i32::MAX.into(),
                },
            ),
            (
                "INT(11)",
                ColumnType::Integer {
                    min: i32::MIN.into(),
                    max: i32::MAX.into(),
                },
            ),
            (
                "bigint unsigned",
                ColumnType::Integer {
                    min: 0,
                    max: u64::MAX.into(),
                },
            ),
            ("Numeric(12, 4)", ColumnType::Decimal),
            ("double precision", ColumnType::Float),
            ("varchar(255)", ColumnType::Text),
            ("TIMESTAMP", ColumnType::DateTime),
            ("time", ColumnType::Time),
            ("date", ColumnType::Date),
        ] {
            assert_eq!(ColumnType::parse(name), Some(want), "{name}");
        }
        for name in ["", "BLOB", "BOOLEAN", "JSON", "INTEGERS"] {
            assert_eq!(ColumnType::parse(name), None, "{name}");
        }
    }
}
