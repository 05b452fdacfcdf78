//! # relay-config-file
//!
//! Reading one TOML configuration file into a typed struct and reporting **every**
//! error in it, each with the file, the key and the reason. The relay
//! (`relay-server`) and every adapter (`providers-sdk`) load their files through
//! it, so `shs-relay config check FILE` and `shs-adapter-* --check-config FILE`
//! report errors the same way.
//!
//! Two steps:
//!
//! 1. [`parse`]: the TOML syntax and the types. A document that does not
//!    deserialise is taken apart section by section (each top-level key on its
//!    own), so an unknown key in one section and a wrong type in another are both
//!    reported, not only the first one serde meets.
//! 2. A [`Report`] the loader fills while checking the values it understands
//!    (numbers in range, references between sections) and the files the
//!    configuration names, then [`Report::finish`]es.
//!
//! How strictly named files are checked is the caller's choice ([`FileCheck`]):
//! a relay starting up needs them to exist, `config check` also reads them as
//! PEM, and checking an example configuration on another host skips them.
//!
//! Not for: what a setting means; each loader checks its own values.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One configuration error, naming the file and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}", file = file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    /// The dotted key (`front.cert`, `providers[1].endpoint`), or `(file)` /
    /// `(document)` when the error is not about one key.
    pub key: String,
    pub reason: String,
}

/// Every error found in one file, in the order of the checks (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The first error (the one a loader that stops early would report).
    pub fn into_first(self) -> ConfigError {
        let mut errors = self.0;
        if errors.is_empty() {
            ConfigError {
                file: PathBuf::new(),
                key: "(document)".into(),
                reason: "invalid configuration".into(),
            }
        } else {
            errors.swap_remove(0)
        }
    }
}

impl fmt::Display for ConfigErrors {
    /// One error a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// How files named in the configuration are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCheck {
    /// Each named file must exist (what start-up checks; the process reads
    /// them right after).
    Exists,
    /// Each must exist, and certificates and keys must parse as PEM
    /// (`config check`).
    Contents,
    /// Not looked at: for checking a configuration away from the host it is
    /// meant for (example files, a review before deployment).
    Skip,
}

/// The errors found in one file so far.
#[derive(Debug)]
pub struct Report {
    file: PathBuf,
    files: FileCheck,
    errors: Vec<ConfigError>,
}

impl Report {
    pub fn new(file: &Path, files: FileCheck) -> Self {
        Self {
            file: file.to_owned(),
            files,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// `value` must be greater than zero.
    pub fn positive(&mut self, key: impl Into<String>, value: u64) {
        if value == 0 {
            self.error(key, "must be greater than 0");
        }
    }

    /// A file the process reads (a CA bundle, a trust list, a key file of its own
    /// format): it must exist.
    pub fn file(&mut self, key: &str, path: &Path) {
        if self.files != FileCheck::Skip && !path.is_file() {
            self.error(key, format!("file not found: {}", path.display()));
        }
    }

    /// A PEM file of one or more certificates (a certificate chain or a CA).
    pub fn certificates(&mut self, key: &str, path: &Path) {
        self.pem(key, path, |p| relay_pki::tls::load_certs(p).map(drop));
    }

    /// A PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn private_key(&mut self, key: &str, path: &Path) {
        self.pem(key, path, |p| {
            relay_pki::tls::load_key(p).map(drop).map_err(|e| match e {
                relay_pki::PkiError::Pem { path, reason } => relay_pki::PkiError::Pem {
                    path,
                    reason: format!("no PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}"),
                },
                other => other,
            })
        });
    }

    /// A private key that must belong to the certificate (chain) beside it;
    /// reported under `key` (`Contents` only, and only when both files read:
    /// otherwise [`Report::certificates`] and [`Report::private_key`] have said why).
    pub fn key_pair(&mut self, key: &str, cert: &Path, private: &Path) {
        if self.files != FileCheck::Contents
            || relay_pki::tls::load_certs(cert).is_err()
            || relay_pki::tls::load_key(private).is_err()
        {
            return;
        }
        // The TLS set-up the process builds from them at start.
        if let Err(e) = relay_pki::tls::server_config(cert, private, None, &[]) {
            self.error(
                key,
                format!(
                    "{}: does not go with the certificate {}: {e}",
                    private.display(),
                    cert.display()
                ),
            );
        }
    }

    fn pem(
        &mut self,
        key: &str,
        path: &Path,
        read: impl FnOnce(&Path) -> Result<(), relay_pki::PkiError>,
    ) {
        match self.files {
            FileCheck::Skip => {}
            FileCheck::Exists => self.file(key, path),
            FileCheck::Contents if !path.is_file() => self.file(key, path),
            FileCheck::Contents => {
                if let Err(e) = read(path) {
                    self.error(key, e.to_string());
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `value` when nothing was reported, else every error.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// How one top-level key of a configuration deserialises, for reporting every
/// failing section of a document that does not deserialise as a whole.
pub struct Section {
    name: &'static str,
    required: bool,
    check: fn(&str, &toml::Value, &mut Vec<(String, String)>),
}

impl Section {
    /// A table (`[front]`) or a single value (`listen = "..."`) of type `T`.
    pub fn one<T: DeserializeOwned>(name: &'static str, required: bool) -> Self {
        Self {
            name,
            required,
            check: |name, value, errors| {
                if let Some(e) = section_error::<T>(name, value) {
                    errors.push(e);
                }
            },
        }
    }

    /// An array of tables (`[[providers]]`) of `T`: each entry is checked on its
    /// own and named by its index (`providers[1].endpoint`).
    pub fn list<T: DeserializeOwned>(name: &'static str) -> Self {
        Self {
            name,
            required: false,
            check: |name, value, errors| match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some((key, reason)) = section_error::<T>("entry", item) {
                            let rest = key.strip_prefix("entry").unwrap_or(&key);
                            errors.push((format!("{name}[{i}]{rest}"), reason));
                        }
                    }
                }
                None => errors.push((name.to_owned(), "must be an array of tables".into())),
            },
        }
    }
}

/// Reads `path` and deserialises it as `T`. When that fails, each top-level key
/// is checked against `sections` on its own, so that every failing section is
/// reported: unknown top-level keys, missing required sections, and the first
/// error inside each section.
pub fn parse<T: DeserializeOwned>(path: &Path, sections: &[Section]) -> Result<T, ConfigErrors> {
    let mut report = Report::new(path, FileCheck::Skip);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            report.error("(file)", e.to_string());
            return Err(ConfigErrors(report.errors));
        }
    };
    let whole = match toml::from_str::<T>(&text) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let (first_key, first_reason) = located(&text, &whole);
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(_) => {
            // Not TOML at all: the parser's one error is all there is.
            report.error(first_key, first_reason);
            return Err(ConfigErrors(report.errors));
        }
    };
    let mut found = Vec::new();
    for (key, value) in &table {
        match sections.iter().find(|s| s.name == key) {
            Some(s) => (s.check)(s.name, value, &mut found),
            None => found.push((
                key.clone(),
                format!(
                    "unknown key; expected one of {}",
                    sections
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    for s in sections {
        if s.required && !table.contains_key(s.name) {
            found.push((
                s.name.to_owned(),
                "missing; this section is required".into(),
            ));
        }
    }
    if found.is_empty() {
        // The sections pass on their own but not together; report serde's error.
        found.push((first_key, first_reason));
    }
    for (key, reason) in found {
        report.error(key, reason);
    }
    Err(ConfigErrors(report.errors))
}

/// The first error of `T` in `{name = value}`, with its dotted key.
fn section_error<T: DeserializeOwned>(name: &str, value: &toml::Value) -> Option<(String, String)> {
    // Serialising the section back to TOML on its own and parsing that gives the
    // error a position, hence a key, which a `toml::Value` alone cannot.
    let mut doc = toml::Table::new();
    doc.insert(name.to_owned(), value.clone());
    let text = toml::to_string(&doc).ok()?;
    match toml::from_str::<std::collections::BTreeMap<String, T>>(&text) {
        Ok(_) => None,
        Err(e) => {
            let (key, reason) = located(&text, &e);
            let key = if key.is_empty() || key == "(document)" {
                name.to_owned()
            } else {
                key
            };
            Some((key, reason))
        }
    }
}

/// The key an error points at (from its position) and its message.
fn located(text: &str, e: &toml::de::Error) -> (String, String) {
    let key = e
        .span()
        .and_then(|span| key_at(text, span.start))
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "(document)".into());
    (key, e.message().trim().to_owned())
}

/// Best effort: the dotted key path of the table entry containing byte `offset`.
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let mut table = String::new();
    let mut key = String::new();
    for line in before.lines() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
            table = h.trim().to_owned();
            key.clear();
        } else if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            table = h.trim().to_owned();
            key.clear();
        } else if let Some((k, _)) = t.split_once('=') {
            key = k.trim().to_owned();
        }
    }
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let current = text.get(line_start..).unwrap_or("");
    if let Some((k, _)) = current.lines().next().unwrap_or("").split_once('=') {
        key = k.trim().to_owned();
    }
    Some(match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    })
}

#[cfg(test)]
#[allow(dead_code)] // the documents' fields are only deserialised
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        listen: std::net::SocketAddr,
        front: Front,
        #[serde(default)]
        limits: Option<Limits>,
        #[serde(default)]
        providers: Vec<Provider>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Front {
        cert: PathBuf,
        port: u16,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limits {
        max: u32,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Provider {
        id: String,
    }

    fn sections() -> Vec<Section> {
        vec![
            Section::one::<std::net::SocketAddr>("listen", true),
            Section::one::<Front>("front", true),
            Section::one::<Limits>("limits", false),
            Section::list::<Provider>("providers"),
        ]
    }

    fn errors(text: &str) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        match parse::<Doc>(&path, &sections()) {
            Ok(d) => panic!("parsed: {d:?}"),
            Err(ConfigErrors(e)) => e
                .into_iter()
                .map(|e| {
                    assert_eq!(e.file, path);
                    (e.key, e.reason)
                })
                .collect(),
        }
    }

    #[test]
    fn a_valid_document_deserialises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[front]\ncert = \"a\"\nport = 1\n",
        )
        .unwrap();
        let d = parse::<Doc>(&path, &sections()).unwrap();
        assert_eq!(d.front.port, 1);
        assert!(d.limits.is_none() && d.providers.is_empty());
    }

    #[test]
    fn every_failing_section_is_reported_with_its_key() {
        let e = errors(
            "listen = \"nowhere\"\nbogus = 1\n[front]\ncert = \"a\"\nport = \"eighty\"\n[limits]\nmax = 1\nmin = 0\n[[providers]]\nid = \"FK\"\n[[providers]]\nid = 7\n",
        );
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bogus",
                "front.port",
                "limits.min",
                "listen",
                "providers[1].id"
            ],
            "{e:?}"
        );
        assert!(e[0].1.starts_with("unknown key"), "{e:?}");
        assert!(e[2].1.contains("unknown field"), "{e:?}");
    }

    #[test]
    fn a_missing_required_section_and_a_missing_key_are_named() {
        let e = errors("[front]\ncert = \"a\"\n");
        assert_eq!(
            e,
            [
                ("front".to_owned(), "missing field `port`".to_owned()),
                (
                    "listen".to_owned(),
                    "missing; this section is required".to_owned()
                )
            ]
        );
    }

    #[test]
    fn broken_toml_is_one_error_at_its_key() {
        let e = errors("listen = \"127.0.0.1:1\"\n[front]\ncert = \"a\nport = 1\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "front.cert", "{e:?}");
    }

    #[test]
    fn a_missing_file_is_reported_as_such() {
        let e = parse::<Doc>(Path::new("/nonexistent/c.toml"), &sections()).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].key, "(file)");
    }

    #[test]
    fn file_checks_follow_the_chosen_strictness() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let missing = dir.path().join("missing.pem");
        let run = |files| {
            let mut r = Report::new(Path::new("c.toml"), files);
            r.certificates("tls.cert", &junk);
            r.private_key("tls.key", &missing);
            r.finish(()).err().map(|e| {
                e.0.into_iter()
                    .map(|e| (e.key, e.reason))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(run(FileCheck::Skip), None);
        let exists = run(FileCheck::Exists).unwrap();
        assert_eq!(exists.len(), 1);
        assert_eq!(exists[0].0, "tls.key");
        assert!(exists[0].1.starts_with("file not found"));
        let contents = run(FileCheck::Contents).unwrap();
        assert_eq!(contents.len(), 2, "{contents:?}");
        assert_eq!(contents[0].0, "tls.cert");
        assert!(contents[0].1.contains("no certificate"), "{contents:?}");
        assert_eq!(contents[1].0, "tls.key");
        assert!(contents[1].1.starts_with("file not found"), "{contents:?}");
        std::fs::write(&missing, "not a key").unwrap();
        let contents = run(FileCheck::Contents).unwrap();
        assert!(contents[1].1.contains("no PEM private key"), "{contents:?}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_own_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ca = relay_pki::DevCa::new("test CA").unwrap();
        let one = ca.server_cert("one", &["localhost"]).unwrap();
        let other = ca.server_cert("other", &["localhost"]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &one.cert_pem).unwrap();
        std::fs::write(&key, &one.key_pem).unwrap();
        let check = |files| {
            let mut r = Report::new(Path::new("c.toml"), files);
            r.key_pair("tls.key", &cert, &key);
            r.finish(()).err()
        };
        assert_eq!(check(FileCheck::Contents), None);
        std::fs::write(&key, &other.key_pem).unwrap();
        let e = check(FileCheck::Contents).expect("a mismatch");
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].key, "tls.key");
        assert!(e.0[0].reason.contains("does not go with"), "{e}");
        assert_eq!(
            check(FileCheck::Exists),
            None,
            "only a contents check reads them"
        );
    }
}
