//! How long a message may wait in an outbox. A time-to-live per product, a default
//! for the rest, and a hard ceiling: personal data never stays longer than one month
//! (SSBTEK Bilaga 3 5.9), so configurations over 30 days are refused at start-up.

use std::collections::HashMap;
use std::time::Duration;

use crate::meta::shs_value;

/// The default time-to-live: 72 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(72 * 3600);
/// The longest time-to-live any configuration may ask for: 30 days.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Refused retention settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("retention for {scope} is {ttl:?}, over the 30-day limit")]
    TooLong { scope: String, ttl: Duration },
    #[error("retention for {scope} is zero")]
    Zero { scope: String },
}

/// Validated time-to-live settings, applied at `put` (`expires_at = arrival + ttl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    default: Duration,
    per_product: HashMap<String, Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            default: DEFAULT_TTL,
            per_product: HashMap::new(),
        }
    }
}

impl Retention {
    /// Product ids are matched in plain form (`urn:X-shs:` stripped, lower case).
    pub fn new(
        default: Duration,
        per_product: impl IntoIterator<Item = (String, Duration)>,
    ) -> Result<Self, RetentionError> {
        check("the default", default)?;
        let mut map = HashMap::new();
        for (product, ttl) in per_product {
            check(&format!("product {product}"), ttl)?;
            map.insert(product_key(&product), ttl);
        }
        Ok(Self {
            default,
            per_product: map,
        })
    }

    /// The time-to-live for a message of this product.
    pub fn ttl_for(&self, product: &str) -> Duration {
        self.per_product
            .get(&product_key(product))
            .copied()
            .unwrap_or(self.default)
    }

    pub fn default_ttl(&self) -> Duration {
        self.default
    }
}

fn check(scope: &str, ttl: Duration) -> Result<(), RetentionError> {
    if ttl.is_zero() {
        return Err(RetentionError::Zero {
            scope: scope.to_owned(),
        });
    }
    if ttl > MAX_TTL {
        return Err(RetentionError::TooLong {
            scope: scope.to_owned(),
            ttl,
        });
    }
    Ok(())
}

fn product_key(product: &str) -> String {
    shs_value(product).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_72_hours() {
        assert_eq!(
            Retention::default().ttl_for("anything"),
            Duration::from_secs(72 * 3600)
        );
    }

    #[test]
    fn exactly_30_days_is_allowed_and_one_second_more_is_refused() {
        assert!(Retention::new(MAX_TTL, []).is_ok());
        let err = Retention::new(
            DEFAULT_TTL,
            [("p".into(), MAX_TTL + Duration::from_secs(1))],
        )
        .unwrap_err();
        assert!(matches!(err, RetentionError::TooLong { ref scope, .. } if scope == "product p"));
        assert!(matches!(
            Retention::new(MAX_TTL * 2, []),
            Err(RetentionError::TooLong { .. })
        ));
        assert!(matches!(
            Retention::new(Duration::ZERO, []),
            Err(RetentionError::Zero { .. })
        ));
    }

    #[test]
    fn per_product_ttl_matches_urn_and_plain_product_ids() {
        let r = Retention::new(
            DEFAULT_TTL,
            [(
                "urn:X-shs:AB12CD34-0000-0000-0000-000000000000".into(),
                Duration::from_secs(60),
            )],
        )
        .unwrap();
        assert_eq!(
            r.ttl_for("ab12cd34-0000-0000-0000-000000000000"),
            Duration::from_secs(60)
        );
        assert_eq!(r.ttl_for("confirm"), DEFAULT_TTL);
    }
}
