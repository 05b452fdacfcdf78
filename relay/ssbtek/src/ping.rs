//! `testaBastjanstInformationResponse`: per slot, whether the provider's test
//! service was called (`anropad`) and, if it failed, an `error`. Also the slot
//! `error` element both answers share ([`SlotError`]).

use std::fmt;

use crate::NS_SSBT;
use crate::answer::{Kalla, RelayFelkod};
use crate::slot::Slot;
use crate::xml::write::XmlWriter;

/// A slot's `error` (`ssbt:Error`: `kalla`, `felkod`, `felmeddelande`+).
#[derive(Clone, PartialEq, Eq)]
pub enum SlotError {
    /// The provider reported it (`kalla` = `BT`).
    Provider { code: String, messages: Vec<String> },
    /// The relay reports it (`kalla` = `SSBT`).
    Relay(RelayFelkod),
}

const PROVIDER_SILENT_SV: &str = "Bastjänsten rapporterade ett fel utan felmeddelande.";
const PROVIDER_SILENT_EN: &str = "The base service reported an error without a message.";

impl SlotError {
    pub fn kalla(&self) -> Kalla {
        match self {
            SlotError::Provider { .. } => Kalla::Bt,
            SlotError::Relay(_) => Kalla::Ssbt,
        }
    }

    pub(crate) fn size_hint(&self) -> usize {
        match self {
            SlotError::Provider { code, messages } => {
                6 * (code.len() + messages.iter().map(String::len).sum::<usize>())
                    + 64 * messages.len()
                    + 256
            }
            SlotError::Relay(_) => 512,
        }
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        w.open("error");
        w.leaf("kalla", self.kalla().as_str());
        match self {
            SlotError::Provider { code, messages } => {
                w.leaf("felkod", code);
                if messages.is_empty() {
                    w.leaf("felmeddelande", PROVIDER_SILENT_SV);
                    w.leaf("felmeddelande", PROVIDER_SILENT_EN);
                }
                for m in messages {
                    w.leaf("felmeddelande", m);
                }
            }
            SlotError::Relay(c) => {
                w.leaf("felkod", c.code());
                w.leaf("felmeddelande", c.swedish());
                w.leaf("felmeddelande", c.english());
            }
        }
        w.close("error");
    }
}

impl fmt::Debug for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::Provider { code, messages } => f
                .debug_struct("Provider")
                .field("code", code)
                .field("messages", &messages.len())
                .finish(),
            SlotError::Relay(c) => write!(f, "Relay({c})"),
        }
    }
}

/// Builds `testaBastjanstInformationResponse`. Slots never set are left out.
#[derive(Debug, Clone, Default)]
pub struct PingAnswer {
    slots: [Option<(bool, Option<SlotError>)>; 7],
}

impl PingAnswer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `slot`'s entry: whether its test service was called, and the error if any.
    pub fn slot(&mut self, slot: Slot, anropad: bool, error: Option<SlotError>) -> &mut Self {
        *slot.pick_mut(&mut self.slots) = Some((anropad, error));
        self
    }

    pub fn to_xml(&self, declaration: bool) -> Vec<u8> {
        let hint: usize = self
            .slots
            .iter()
            .flatten()
            .map(|(_, e)| e.as_ref().map_or(64, SlotError::size_hint))
            .sum();
        let mut w = XmlWriter::new("ssbt:", 256 + hint);
        if declaration {
            w.declaration();
        }
        w.open_with(
            "testaBastjanstInformationResponse",
            &[("xmlns:ssbt", NS_SSBT)],
        );
        for slot in Slot::ALL {
            if let Some((anropad, error)) = slot.pick(&self.slots) {
                w.open(slot.as_str());
                w.leaf("anropad", if *anropad { "true" } else { "false" });
                if let Some(e) = error {
                    e.write(&mut w);
                }
                w.close(slot.as_str());
            }
        }
        w.close("testaBastjanstInformationResponse");
        w.finish().to_vec()
    }
}
