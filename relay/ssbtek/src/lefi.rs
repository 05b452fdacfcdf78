//! The LEFI v9 request (`LefiExternFormansinformationFraga`) that FK's slot
//! carries base64-encoded in `lefiJsonFraga`.

use relay_ident::Personnummer;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use crate::error::Rule;
use crate::question::{Period, ValidationLimits};

/// Checks the LEFI request a caller put in FK's `lefiJsonFraga`: at most
/// `max_lefi_json_bytes` (checked first) and `max_lefi_json_depth` levels of
/// arrays and objects (checked in one pass before the JSON is parsed), a JSON
/// object, and if it names a person, the one in `personidentitet` (what the
/// relay logs is what FK is asked).
pub fn check_request(
    json: &[u8],
    person: Personnummer,
    limits: &ValidationLimits,
) -> Result<(), Rule> {
    if json.len() > limits.max_lefi_json_bytes {
        return Err(Rule::LefiTooLarge {
            limit: limits.max_lefi_json_bytes,
        });
    }
    if nesting(json) > limits.max_lefi_json_depth {
        return Err(Rule::LefiTooDeep {
            limit: limits.max_lefi_json_depth,
        });
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        personnummer: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(json).map_err(|_| Rule::LefiNotJson)?;
    match probe.personnummer {
        None => Ok(()),
        Some(serde_json::Value::String(mut s)) => {
            let same = s == person.as_str() || s == person.short_form();
            s.zeroize();
            if same {
                Ok(())
            } else {
                Err(Rule::LefiOtherPerson)
            }
        }
        Some(_) => Err(Rule::LefiOtherPerson),
    }
}

/// The deepest nesting of `[` and `{` outside strings (malformed JSON is left
/// to the parser; this only bounds its recursion).
fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A LEFI v9 `formansinformation/fraga` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LefiRequest {
    pub person: Personnummer,
    pub period: Period,
    /// FK förmånsgrupper (`FK:ABB`, `FK:SJP`, …).
    pub formansinformation: Vec<String>,
    /// PM groups for claims (`PM:AP`, `PM:EF`, `PM:BTI`).
    pub ansprak: Vec<String>,
    /// PM groups for decisions.
    pub beslut: Vec<String>,
    /// FK or PM groups for decided, not yet paid payments.
    pub preliminara_utbetalningar: Vec<String>,
    /// FK or PM groups for effected payments.
    pub utbetalningar: Vec<String>,
    /// Other information (`FK:GEPI`, `PM:PU`, …).
    pub ovrig_information: Vec<String>,
}

fn codes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl LefiRequest {
    /// A request with no groups (LEFI refuses that; add some).
    pub fn new(person: Personnummer, period: Period) -> Self {
        Self {
            person,
            period,
            formansinformation: Vec::new(),
            ansprak: Vec::new(),
            beslut: Vec::new(),
            preliminara_utbetalningar: Vec::new(),
            utbetalningar: Vec::new(),
            ovrig_information: Vec::new(),
        }
    }

    /// What Sundsvall's financial-aid client asks for: barnbidrag information
    /// and payments from FK, allmän pension claims and decisions from PM, and
    /// general person information.
    pub fn ekonomiskt_bistand(person: Personnummer, period: Period) -> Self {
        Self {
            formansinformation: codes(&["FK:ABB"]),
            ansprak: codes(&["PM:AP"]),
            beslut: codes(&["PM:AP"]),
            preliminara_utbetalningar: codes(&["FK:ABB"]),
            utbetalningar: codes(&["FK:ABB"]),
            ovrig_information: codes(&["FK:GEPI"]),
            ..Self::new(person, period)
        }
    }

    /// The JSON body (personal data: wiped on drop).
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            personnummer: &'a str,
            period: PeriodJson,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            formansinformation: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            ansprak: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            beslut: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            preliminara_utbetalningar: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            utbetalningar: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            ovrig_information: &'a [String],
        }
        #[derive(Serialize)]
        struct PeriodJson {
            from: String,
            tom: String,
        }
        let body = Body {
            personnummer: self.person.as_str(),
            period: PeriodJson {
                from: self.period.from().format("%Y-%m-%d").to_string(),
                tom: self.period.tom().format("%Y-%m-%d").to_string(),
            },
            formansinformation: &self.formansinformation,
            ansprak: &self.ansprak,
            beslut: &self.beslut,
            preliminara_utbetalningar: &self.preliminara_utbetalningar,
            utbetalningar: &self.utbetalningar,
            ovrig_information: &self.ovrig_information,
        };
        let mut out = Zeroizing::new(Vec::with_capacity(512));
        // Serialising plain strings into a Vec cannot fail.
        serde_json::to_writer(&mut *out, &body).unwrap_or_default();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn the_financial_aid_request_has_the_lefi_shape() {
        let person = Personnummer::parse("191212121212").unwrap();
        let period = Period::new(
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
        )
        .unwrap();
        let json = LefiRequest::ekonomiskt_bistand(person, period).to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["personnummer"], "191212121212");
        assert_eq!(v["period"]["from"], "2024-01-01");
        assert_eq!(v["period"]["tom"], "2024-03-31");
        assert_eq!(v["formansinformation"][0], "FK:ABB");
        assert_eq!(v["preliminaraUtbetalningar"][0], "FK:ABB");
        assert_eq!(v["ovrigInformation"][0], "FK:GEPI");
        let bare = LefiRequest::new(person, period).to_json();
        let v: serde_json::Value = serde_json::from_slice(&bare).unwrap();
        assert!(v.get("ansprak").is_none());
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        assert_eq!(nesting(br#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
        assert_eq!(nesting(br#"{"a":"\"[["}"#), 1);
        assert_eq!(nesting(b"1"), 0);
    }
}
