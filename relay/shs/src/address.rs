//! SHS addresses and product ids, in plain and URN (`urn:X-shs:`) form.

use std::fmt;

/// The URN prefix SHS writes before addresses and product ids.
pub const URN_PREFIX: &str = "urn:X-shs:";

/// Strips a `urn:X-shs:` prefix, case-insensitively, and surrounding white space.
pub fn strip_urn(value: &str) -> &str {
    let v = value.trim();
    match (v.get(..URN_PREFIX.len()), v.get(URN_PREFIX.len()..)) {
        (Some(p), Some(rest)) if p.eq_ignore_ascii_case(URN_PREFIX) => rest.trim(),
        _ => v,
    }
}

/// An actor address: an organisation number with an optional internal id
/// (`0123456789.agda`). Routing uses the organisation part; an outbox is the
/// whole address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShsAddress(String);

impl ShsAddress {
    /// Reads a plain or URN-form address; `None` when blank.
    pub fn parse(value: &str) -> Option<Self> {
        let v = strip_urn(value);
        (!v.is_empty()).then(|| Self(v.to_owned()))
    }

    /// The whole address (`0123456789.agda`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The organisation number part (before the first `.`).
    pub fn org_number(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
    }

    /// The internal id after the first `.`, if any.
    pub fn internal_id(&self) -> Option<&str> {
        self.0.split_once('.').map(|(_, id)| id)
    }

    /// `urn:X-shs:` + the address.
    pub fn to_urn(&self) -> String {
        format!("{URN_PREFIX}{}", self.0)
    }
}

impl fmt::Display for ShsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product id: a UUID, or one of the special products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductId {
    Uuid(uuid::Uuid),
    Confirm,
    Error,
    Agreement,
}

impl ProductId {
    /// Reads a plain or URN-form product id. Whitespace inside, a missing dash or
    /// anything that is not a UUID or a special product is refused.
    pub fn parse(value: &str) -> Option<Self> {
        let v = strip_urn(value);
        match v {
            "confirm" => Some(Self::Confirm),
            "error" => Some(Self::Error),
            "agreement" => Some(Self::Agreement),
            _ if v.len() == 36 && v.as_bytes().get(8) == Some(&b'-') => {
                uuid::Uuid::parse_str(v).ok().map(Self::Uuid)
            }
            _ => None,
        }
    }

    pub fn as_uuid(&self) -> Option<uuid::Uuid> {
        match self {
            Self::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// `urn:X-shs:` + the id.
    pub fn to_urn(&self) -> String {
        format!("{URN_PREFIX}{self}")
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uuid(u) => write!(f, "{u}"),
            Self::Confirm => f.write_str("confirm"),
            Self::Error => f.write_str("error"),
            Self::Agreement => f.write_str("agreement"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_and_plain_forms_are_the_same_address() {
        let a = ShsAddress::parse("urn:X-shs:0000000000.agda").unwrap();
        let b = ShsAddress::parse("URN:x-SHS:0000000000.agda").unwrap();
        let c = ShsAddress::parse(" 0000000000.agda ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.org_number(), "0000000000");
        assert_eq!(a.internal_id(), Some("agda"));
        assert_eq!(a.to_urn(), "urn:X-shs:0000000000.agda");
        assert!(ShsAddress::parse("urn:X-shs:  ").is_none());
    }

    #[test]
    fn product_ids_are_uuids_or_special_products() {
        assert_eq!(
            ProductId::parse("urn:X-shs:00000000-0000-0000-0000-000000000000"),
            Some(ProductId::Uuid(uuid::Uuid::nil()))
        );
        assert_eq!(
            ProductId::parse("urn:x-shs:confirm"),
            Some(ProductId::Confirm)
        );
        assert_eq!(ProductId::parse("error"), Some(ProductId::Error));
        assert_eq!(ProductId::parse("agreement"), Some(ProductId::Agreement));
        for bad in [
            "00000000-0000-0000-0000 000000000000",
            "000000000000000000000000000000000000",
            "0000000000000000000000000000000",
            "",
            "ping",
        ] {
            assert_eq!(ProductId::parse(bad), None, "{bad}");
        }
    }
}
