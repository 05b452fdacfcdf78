//! Values that may hold personal data: wiped from memory when dropped, and
//! shown by `Debug` only as a length, so they cannot leak into a log line.

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

/// A text value from a question (a name, a case id, a purpose). Wiped on drop.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Text(Zeroizing<String>);

impl Text {
    pub fn new(s: impl Into<String>) -> Self {
        Text(Zeroizing::new(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::new(s)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} bytes)", self.0.len())
    }
}

/// Bytes that may hold personal data (a LEFI request, a serialised slot
/// question, a provider payload). Wiped on drop.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(Zeroizing<Vec<u8>>);

impl Blob {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Blob(Zeroizing::new(bytes.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(Zeroizing::new(v))
    }
}

impl From<Zeroizing<Vec<u8>>> for Blob {
    fn from(v: Zeroizing<Vec<u8>>) -> Self {
        Blob(v)
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_length() {
        assert_eq!(format!("{:?}", Text::from("Tolvan")), "Text(6 bytes)");
        assert_eq!(
            format!("{:?}", Blob::new(b"1912".to_vec())),
            "Blob(4 bytes)"
        );
    }
}
