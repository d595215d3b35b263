//! The one CSV writer of the report: every cell passes [`output::csv_cell`], so text a
//! spreadsheet would run as a formula (a model id or label beginning with `=`) is written
//! quoted, and numbers stay numbers.

/// A CSV writer into memory whose cells are neutralised.
pub(crate) struct CsvOut(csv::Writer<Vec<u8>>);

impl CsvOut {
    /// An empty CSV.
    pub(crate) fn new() -> Self {
        CsvOut(csv::Writer::from_writer(Vec::new()))
    }

    /// Write one record.
    pub(crate) fn write_record<I, T>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        for cell in record {
            self.0
                .write_field(output::csv_cell(cell.as_ref()).as_bytes())?;
        }
        self.0.write_record(None::<&[u8]>)
    }

    /// The bytes written.
    pub(crate) fn into_inner(self) -> csv::Result<Vec<u8>> {
        self.0
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}
