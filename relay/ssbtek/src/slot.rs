//! The seven provider slots of SSBTEK v10, in the order the XSD lists them.

use std::fmt;
use std::str::FromStr;

/// One provider slot (`bastjänst`) of the composite service. The declaration order
/// is the order of `specifikaFrageparametrar` and `svarsdata` in the v10 XSD, so
/// `Ord` and [`Slot::ALL`] give document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Arbetsförmedlingen.
    Af,
    /// Centrala studiestödsnämnden.
    Csn,
    /// Försäkringskassan, including Pensionsmyndigheten (via LEFI).
    Fk,
    /// Skatteverket.
    Skv,
    /// Arbetslöshetskassornas samorganisation (the a-kassor).
    So,
    /// Transportstyrelsen.
    Tns,
    /// Migrationsverket.
    Miv,
}

impl Slot {
    /// Every slot, in XSD order.
    pub const ALL: [Slot; 7] = [
        Slot::Af,
        Slot::Csn,
        Slot::Fk,
        Slot::Skv,
        Slot::So,
        Slot::Tns,
        Slot::Miv,
    ];

    /// The element name in the v10 schema (`AF`, `CSN`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Slot::Af => "AF",
            Slot::Csn => "CSN",
            Slot::Fk => "FK",
            Slot::Skv => "SKV",
            Slot::So => "SO",
            Slot::Tns => "TNS",
            Slot::Miv => "MIV",
        }
    }

    /// The payload format id a provider adapter declares for this slot's
    /// `<ssbt:data>` content: `ssbtek-v10/<SLOT>`.
    pub const fn payload_format(self) -> &'static str {
        match self {
            Slot::Af => "ssbtek-v10/AF",
            Slot::Csn => "ssbtek-v10/CSN",
            Slot::Fk => "ssbtek-v10/FK",
            Slot::Skv => "ssbtek-v10/SKV",
            Slot::So => "ssbtek-v10/SO",
            Slot::Tns => "ssbtek-v10/TNS",
            Slot::Miv => "ssbtek-v10/MIV",
        }
    }

    /// The slot a payload format id names, if any.
    pub fn from_payload_format(format: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.payload_format() == format)
    }

    /// Position in XSD order (0 for AF, 6 for MIV).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// This slot's entry of a per-slot array (in XSD order), without indexing.
    pub(crate) fn pick<T>(self, slots: &[T; 7]) -> &T {
        let [af, csn, fk, skv, so, tns, miv] = slots;
        match self {
            Slot::Af => af,
            Slot::Csn => csn,
            Slot::Fk => fk,
            Slot::Skv => skv,
            Slot::So => so,
            Slot::Tns => tns,
            Slot::Miv => miv,
        }
    }

    /// As [`Slot::pick`], mutably.
    pub(crate) fn pick_mut<T>(self, slots: &mut [T; 7]) -> &mut T {
        let [af, csn, fk, skv, so, tns, miv] = slots;
        match self {
            Slot::Af => af,
            Slot::Csn => csn,
            Slot::Fk => fk,
            Slot::Skv => skv,
            Slot::So => so,
            Slot::Tns => tns,
            Slot::Miv => miv,
        }
    }

    /// Whether the slot's question element may carry its own `tidsperiod`
    /// (AF, CSN, SO and TNS in v10).
    pub const fn takes_period(self) -> bool {
        matches!(self, Slot::Af | Slot::Csn | Slot::So | Slot::Tns)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The text named no SSBTEK v10 slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an SSBTEK v10 slot (expected AF, CSN, FK, SKV, SO, TNS or MIV)")]
pub struct UnknownSlot;

impl FromStr for Slot {
    type Err = UnknownSlot;

    /// Accepts the element names, case-insensitively (`FK`, `fk`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slot::ALL
            .into_iter()
            .find(|slot| slot.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(UnknownSlot)
    }
}

/// Configuration files name a slot by its element name, exactly (`FK`); any
/// other text is an error that lists the valid ids.
impl<'de> serde::Deserialize<'de> for Slot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Slot::ALL
            .into_iter()
            .find(|slot| slot.as_str() == text)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown agency id; expected one of {}",
                    Slot::ALL.map(Slot::as_str).join(", ")
                ))
            })
    }
}

impl serde::Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_pads_to_a_column_width_in_tables() {
        assert_eq!(format!("[{:<6}]", Slot::Af), "[AF    ]");
        assert_eq!(format!("[{:>4}]", Slot::Miv), "[ MIV]");
    }

    #[test]
    fn slots_are_in_xsd_order_and_round_trip() {
        let names: Vec<_> = Slot::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"]);
        for (i, slot) in Slot::ALL.into_iter().enumerate() {
            assert_eq!(slot.index(), i);
            assert_eq!(slot.as_str().parse::<Slot>(), Ok(slot));
            assert_eq!(slot.as_str().to_lowercase().parse::<Slot>(), Ok(slot));
            assert_eq!(Slot::from_payload_format(slot.payload_format()), Some(slot));
        }
        assert!(Slot::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!("PM".parse::<Slot>(), Err(UnknownSlot));
        assert_eq!(Slot::Fk.payload_format(), "ssbtek-v10/FK");
    }

    #[test]
    fn serde_reads_and_writes_the_element_name_exactly() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct C {
            id: Slot,
        }
        for slot in Slot::ALL {
            let json = format!("{{\"id\":\"{slot}\"}}");
            let c: C = serde_json::from_str(&json).unwrap();
            assert_eq!(c.id, slot);
            assert_eq!(serde_json::to_string(&c).unwrap(), json);
        }
        for bad in ["fk", "PM", "ELT", ""] {
            let e = serde_json::from_str::<C>(&format!("{{\"id\":\"{bad}\"}}"))
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("unknown agency id; expected one of AF, CSN, FK, SKV, SO, TNS, MIV"),
                "{e}"
            );
        }
    }
}
