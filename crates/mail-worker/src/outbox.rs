//! Delivery to a development outbox: one JSON file per job in a directory, which the embedded
//! default (`cargo run -p demo`) reads back. Nothing is ever sent to the outside world from here.

use std::path::{Path, PathBuf};

use mail_queue::MailJob;

/// Failures of outbox delivery.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot write to the outbox {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Contract(#[from] mail_queue::ContractError),
    #[error("job {0} has expired and was not delivered")]
    Expired(String),
}

/// A directory receiving one file per delivered job.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// An outbox in `dir`, created if needed (readable by the owner only: jobs hold codes).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, DeliveryError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| DeliveryError::Io {
            path: dir.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| DeliveryError::Io {
                    path: dir.clone(),
                    source,
                },
            )?;
        }
        Ok(Self { dir })
    }

    /// Writes the job unless it has expired. The file appears whole or not at all (written
    /// aside, then renamed), and delivering the same job twice keeps one file.
    pub fn deliver(
        &self,
        job: &MailJob,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<PathBuf, DeliveryError> {
        if job.is_expired(now) {
            return Err(DeliveryError::Expired(job.id.clone()));
        }
        let safe_id: String = job
            .id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let name = format!(
            "{}-{safe_id}.json",
            job.created_at.format("%Y%m%dT%H%M%S%.6fZ")
        );
        let path = self.dir.join(name);
        let partial = self.dir.join(format!(".{safe_id}.partial"));
        let io = |source| DeliveryError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&partial, job.to_json()?).map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)?;
        Ok(path)
    }

    /// Every delivered job, oldest first.
    pub fn messages(&self) -> Result<Vec<MailJob>, DeliveryError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|source| DeliveryError::Io {
                path: self.dir.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_message(p))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).map_err(|source| DeliveryError::Io {
                    path: p.clone(),
                    source,
                })?;
                Ok(MailJob::from_json(&bytes)?)
            })
            .collect()
    }
}

fn is_message(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
        && !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_queue::{Locale, Template, CONTRACT_VERSION};
    use std::collections::BTreeMap;

    fn job(id: &str, minutes: i64) -> MailJob {
        let now = chrono::Utc::now();
        MailJob {
            version: CONTRACT_VERSION,
            id: id.into(),
            recipient: "jean@example.org".into(),
            template: Template::PasswordResetCode,
            locale: Locale::En,
            parameters: BTreeMap::from([("code".into(), "120394".into())]),
            created_at: now,
            expires_at: now + chrono::Duration::minutes(minutes),
        }
    }

    #[test]
    fn delivers_reads_back_and_refuses_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path().join("outbox")).expect("open");
        let first = job(&uuid::Uuid::new_v4().to_string(), 10);
        outbox.deliver(&first, chrono::Utc::now()).expect("deliver");
        outbox
            .deliver(&first, chrono::Utc::now())
            .expect("deliver again");
        let stale = job("stale", 10);
        let late = stale.expires_at + chrono::Duration::seconds(1);
        assert!(matches!(
            outbox.deliver(&stale, late),
            Err(DeliveryError::Expired(_))
        ));
        let messages = outbox.messages().expect("read");
        assert_eq!(
            messages,
            vec![first],
            "one file per job, expired job not delivered"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("outbox"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }

    #[test]
    fn odd_ids_cannot_escape_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path().join("outbox")).expect("open");
        let path = outbox
            .deliver(&job("../../etc/passwd", 10), chrono::Utc::now())
            .expect("deliver");
        assert_eq!(path.parent(), Some(dir.path().join("outbox").as_path()));
    }
}
