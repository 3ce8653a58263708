//! `idp users import`: members from a CSV file, without passwords (each activates their
//! account through the first-login journey).
//!
//! The file has a header row naming its columns, in any order: `email`, `member_code`,
//! `given_name`, `family_name`, `locale` (the last two optional columns may be empty). Every
//! row is checked; valid rows are written in batches of [`BATCH`] in one statement each, and a
//! row whose email already has an account is counted as already present, so running the same
//! import twice adds nothing the second time.

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

use super::member_code::MemberCode;
use crate::store::users::{self, NewUser};
use crate::store::{DbConnection, StoreError, StoreResult};

/// Rows written per transaction.
pub const BATCH: usize = 1000;
const NAME_MAX_CHARS: usize = 100;

/// A row that was not imported, by its line in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Data rows read (the header excluded).
    pub rows: u64,
    pub imported: u64,
    /// Rows whose email already has an account (an earlier run, or someone else).
    pub already_present: u64,
    pub invalid: Vec<RowError>,
}

/// Why the file as a whole cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file cannot be read as CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("the header row lacks the column `{0}` (columns: email, member_code, given_name, family_name, locale)")]
    MissingColumn(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Columns {
    email: usize,
    member_code: Option<usize>,
    given_name: usize,
    family_name: usize,
    locale: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> Result<Self, ImportError> {
        let find = |name: &str| {
            header.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        Ok(Self {
            email: find("email").ok_or(ImportError::MissingColumn("email"))?,
            member_code: find("member_code"),
            given_name: find("given_name").ok_or(ImportError::MissingColumn("given_name"))?,
            family_name: find("family_name").ok_or(ImportError::MissingColumn("family_name"))?,
            locale: find("locale"),
        })
    }
}

/// A valid row, not yet written.
struct Candidate {
    line: u64,
    person: NewUser,
}

fn name(field: &str, what: &str) -> Result<String, String> {
    let value = field.trim();
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.chars().count() > NAME_MAX_CHARS || value.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be at most {NAME_MAX_CHARS} characters, without control characters"
        ));
    }
    Ok(value.to_string())
}

fn locale(field: &str) -> Result<&'static str, String> {
    match field.trim().to_ascii_lowercase().as_str() {
        "" | "fr" | "fr-ca" => Ok("fr-CA"),
        "en" | "en-ca" => Ok("en"),
        other => Err(format!("locale `{other}` is not fr-CA or en")),
    }
}

/// Checks one row; the person to create, or what is wrong.
fn candidate(record: &csv::StringRecord, columns: &Columns) -> Result<NewUser, String> {
    let field = |i: usize| record.get(i).unwrap_or("");
    let email = field(columns.email).trim();
    if !crate::authn::plausible_email(email) {
        return Err(format!("`{email}` is not a valid email address"));
    }
    let member_code = match columns.member_code.map(field).map(str::trim) {
        None | Some("") => None,
        Some(code) => Some(
            MemberCode::parse(code)
                .ok_or_else(|| {
                    format!(
                        "member code `{code}` is not valid: 5 digits, R and 5 digits, E and 8 digits, or 8 digits starting with 500"
                    )
                })?
                .as_str()
                .to_string(),
        ),
    };
    Ok(NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.to_string(),
        member_code,
        given_name: name(field(columns.given_name), "given_name")?,
        family_name: name(field(columns.family_name), "family_name")?,
        locale: locale(columns.locale.map_or("", field))?.to_string(),
        password_hash: None,
        must_reset: true,
    })
}

/// Imports the members of `input` (CSV). `progress` is told how many bytes were read after
/// each batch.
pub fn import(
    conn: &mut DbConnection,
    input: impl Read,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(input);
    let columns = Columns::of(reader.headers()?)?;
    let mut report = ImportReport::default();
    // Lines of the emails and member codes seen so far in this file, to name duplicates.
    let mut seen_emails: HashMap<String, u64> = HashMap::new();
    let mut seen_codes: HashMap<String, u64> = HashMap::new();
    let mut batch: Vec<Candidate> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                // A malformed row (bad UTF-8, say) is reported; the rest still imports.
                let line = e.position().map_or(0, csv::Position::line);
                report.rows += 1;
                report.invalid.push(RowError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(e.into());
                }
                continue;
            }
        };
        if !more {
            break;
        }
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        report.rows += 1;
        let person = match candidate(&record, &columns) {
            Ok(p) => p,
            Err(message) => {
                report.invalid.push(RowError { line, message });
                continue;
            }
        };
        let key = users::email_key(&person.email);
        if let Some(first) = seen_emails.get(&key) {
            report.invalid.push(RowError {
                line,
                message: format!("the email address is already on line {first}"),
            });
            continue;
        }
        if let Some(code) = &person.member_code {
            if let Some(first) = seen_codes.get(code) {
                report.invalid.push(RowError {
                    line,
                    message: format!("member code {code} is already on line {first}"),
                });
                continue;
            }
            seen_codes.insert(code.clone(), line);
        }
        seen_emails.insert(key, line);
        batch.push(Candidate { line, person });
        if batch.len() == BATCH {
            write_batch(conn, &mut batch, &mut report)?;
            progress(reader.position().byte());
        }
    }
    write_batch(conn, &mut batch, &mut report)?;
    progress(reader.position().byte());
    report.invalid.sort_by_key(|e| e.line);
    Ok(report)
}

/// Writes the batch's new people; rows already present are counted, and a member code held
/// by someone else is reported on its line.
fn write_batch(
    conn: &mut DbConnection,
    batch: &mut Vec<Candidate>,
    report: &mut ImportReport,
) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = batch
        .iter()
        .map(|c| users::email_key(&c.person.email))
        .collect();
    let codes: Vec<String> = batch
        .iter()
        .filter_map(|c| c.person.member_code.clone())
        .collect();
    let written = crate::store::write_transaction(conn, |conn| {
        let taken = users::taken_email_keys(conn, &keys)?;
        let holders = users::member_code_holders(conn, &codes)?;
        let mut new = Vec::with_capacity(batch.len());
        for (candidate, key) in batch.drain(..).zip(&keys) {
            if taken.contains(key) {
                report.already_present += 1;
                continue;
            }
            if let Some(code) = &candidate.person.member_code {
                if holders.contains_key(code) {
                    report.invalid.push(RowError {
                        line: candidate.line,
                        message: format!("member code {code} belongs to another account"),
                    });
                    continue;
                }
            }
            new.push(candidate.person);
        }
        let inserted = users::insert_new(conn, &new, crate::store::now())?;
        // Rows another writer created meanwhile were skipped by the insert itself.
        report.already_present += (new.len() - inserted) as u64;
        Ok::<_, StoreError>(inserted)
    })?;
    report.imported += written as u64;
    Ok(())
}
