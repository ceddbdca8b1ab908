//! The row readers a profile can name, behind one type so the tabular pipeline in
//! [`crate::ingest`] is the same for all of them: `safeguarding` (the data set's fixed
//! shape, [`crate::safeguarding`]) and `generic` (entities and links the profile declares,
//! [`crate::generic`]).

use chrono::NaiveDate;
use pole_model::SchemaRegistry;

use crate::commit::RowPlan;
use crate::error::{IngestError, Result};
use crate::profile::Profile;
use crate::report::{ColumnUse, RowReport};
use crate::{generic, safeguarding};

/// A profile's reader, prepared for one file's header.
#[derive(Debug)]
pub enum RowReader<'a> {
    Safeguarding(safeguarding::Reader<'a>),
    Generic(generic::Reader<'a>),
}

impl<'a> RowReader<'a> {
    pub fn new(
        profile: &'a Profile,
        schema: &'a SchemaRegistry,
        council: &str,
        header: &[String],
        today: NaiveDate,
    ) -> Result<Self> {
        match profile.reader.as_str() {
            "safeguarding" => {
                Ok(RowReader::Safeguarding(safeguarding::Reader::new(profile, schema, council, header, today)?))
            }
            "generic" => Ok(RowReader::Generic(generic::Reader::new(profile, schema, council, header, today)?)),
            other => Err(IngestError::Profile {
                name: profile.name.clone(),
                reason: format!("reader {other:?} is not known (readers: {})", crate::profile::READERS.join(", ")),
            }),
        }
    }

    /// What each of the header's columns is read as, for the report.
    pub fn columns(&self, header: &[String]) -> Vec<ColumnUse> {
        header
            .iter()
            .enumerate()
            .map(|(idx, column)| {
                let (read_as, note) = match self {
                    RowReader::Safeguarding(r) => {
                        let read_as = r.read_as(idx);
                        (read_as.map(str::to_owned), read_as.and_then(safeguarding::column_note))
                    }
                    RowReader::Generic(r) => {
                        let read_as = r.read_as(idx);
                        (read_as.map(str::to_owned), read_as.and_then(|c| r.column_note(c)))
                    }
                };
                ColumnUse { column: column.clone(), read_as, note }
            })
            .collect()
    }

    pub fn missing_columns(&self) -> &[String] {
        match self {
            RowReader::Safeguarding(r) => r.missing_columns(),
            RowReader::Generic(r) => r.missing_columns(),
        }
    }

    /// Reads one record. `None` when the row is rejected (the report says why).
    pub fn read(&mut self, row: u64, fields: &[String], report: &mut RowReport) -> Option<RowPlan> {
        match self {
            RowReader::Safeguarding(r) => r.read(row, fields, report),
            RowReader::Generic(r) => r.read(row, fields, report),
        }
    }
}
