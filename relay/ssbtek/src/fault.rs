//! SOAP fault details: `hamtaBastjanstInformationFault` and
//! `testaBastjanstInformationFault` (`BastjanstInformationFault`: `felkod`,
//! `felmeddelande`+), with the relay's documented [`FaultFelkod`] values. The
//! SOAP front wraps the detail in its `soap:Fault`.

use std::fmt;

use crate::NS_SSBT;
use crate::error::QuestionError;
use crate::xml::write::XmlWriter;

/// Why the whole call was refused (as opposed to one slot failing).
///
/// | felkod | side | when |
/// |---|---|---|
/// | `VALIDERINGSFEL` | caller | the question breaks the v10 XSD or the relay's rules |
/// | `BEHORIGHET` | caller | the client certificate may not ask for this ingivare or slot |
/// | `AVTAL_SAKNAS` | caller | no agreement covers this ingivare and service |
/// | `OVERBELASTAD` | relay | too many calls in progress; try again later |
/// | `TEKNISKT_FEL` | relay | an internal error in the relay |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultFelkod {
    Valideringsfel,
    Behorighet,
    AvtalSaknas,
    Overbelastad,
    TeknisktFel,
}

impl FaultFelkod {
    pub const ALL: [FaultFelkod; 5] = [
        FaultFelkod::Valideringsfel,
        FaultFelkod::Behorighet,
        FaultFelkod::AvtalSaknas,
        FaultFelkod::Overbelastad,
        FaultFelkod::TeknisktFel,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            FaultFelkod::Valideringsfel => "VALIDERINGSFEL",
            FaultFelkod::Behorighet => "BEHORIGHET",
            FaultFelkod::AvtalSaknas => "AVTAL_SAKNAS",
            FaultFelkod::Overbelastad => "OVERBELASTAD",
            FaultFelkod::TeknisktFel => "TEKNISKT_FEL",
        }
    }

    pub const fn swedish(self) -> &'static str {
        match self {
            FaultFelkod::Valideringsfel => "Frågan är inte giltig enligt SSBTEK v10.",
            FaultFelkod::Behorighet => "Anroparen är inte behörig att ställa frågan.",
            FaultFelkod::AvtalSaknas => "Det finns inget avtal för ingivaren och tjänsten.",
            FaultFelkod::Overbelastad => "Tjänsten är överbelastad. Försök igen senare.",
            FaultFelkod::TeknisktFel => "Ett tekniskt fel uppstod i den sammansatta bastjänsten.",
        }
    }

    pub const fn english(self) -> &'static str {
        match self {
            FaultFelkod::Valideringsfel => "The question is not valid under SSBTEK v10.",
            FaultFelkod::Behorighet => "The caller is not authorised to ask this question.",
            FaultFelkod::AvtalSaknas => "There is no agreement for this ingivare and service.",
            FaultFelkod::Overbelastad => "The service is overloaded. Try again later.",
            FaultFelkod::TeknisktFel => "A technical error occurred in the relay.",
        }
    }

    /// Whether the caller can fix it (SOAP `Client` fault) rather than the relay
    /// (`Server` fault).
    pub const fn is_caller_fault(self) -> bool {
        matches!(
            self,
            FaultFelkod::Valideringsfel | FaultFelkod::Behorighet | FaultFelkod::AvtalSaknas
        )
    }

    /// The SOAP 1.1 `faultcode` to use with it.
    pub const fn soap_fault_code(self) -> &'static str {
        if self.is_caller_fault() {
            "soap:Client"
        } else {
            "soap:Server"
        }
    }
}

impl fmt::Display for FaultFelkod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Which operation the fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `hamtaBastjanstInformation`.
    Hamta,
    /// `testaBastjanstInformation` (the ping).
    Testa,
}

impl Operation {
    /// The fault detail element.
    pub const fn fault_element(self) -> &'static str {
        match self {
            Operation::Hamta => "hamtaBastjanstInformationFault",
            Operation::Testa => "testaBastjanstInformationFault",
        }
    }
}

/// A fault detail: a felkod and one or more messages (Swedish first, then English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    felkod: FaultFelkod,
    felmeddelande: Vec<String>,
}

impl Fault {
    /// The felkod with its standard Swedish and English messages.
    pub fn new(felkod: FaultFelkod) -> Self {
        Self {
            felkod,
            felmeddelande: vec![felkod.swedish().to_owned(), felkod.english().to_owned()],
        }
    }

    /// Adds a message. It must not hold personal data.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.felmeddelande.push(message.into());
        self
    }

    pub fn felkod(&self) -> FaultFelkod {
        self.felkod
    }

    pub fn felmeddelande(&self) -> &[String] {
        &self.felmeddelande
    }

    /// The detail element (`ssbt:hamtaBastjanstInformationFault` or
    /// `ssbt:testaBastjanstInformationFault`), UTF-8.
    pub fn to_xml(&self, operation: Operation, declaration: bool) -> Vec<u8> {
        let size: usize = self.felmeddelande.iter().map(|m| m.len() * 6 + 64).sum();
        let mut w = XmlWriter::new("ssbt:", 256 + size);
        if declaration {
            w.declaration();
        }
        let root = operation.fault_element();
        w.open_with(root, &[("xmlns:ssbt", NS_SSBT)]);
        w.leaf("felkod", self.felkod.code());
        for m in &self.felmeddelande {
            w.leaf("felmeddelande", m);
        }
        w.close(root);
        w.finish().to_vec()
    }
}

/// Every refused question is a `VALIDERINGSFEL`; the messages name the field and
/// the rule (Swedish, then English), never the value.
impl From<&QuestionError> for Fault {
    fn from(e: &QuestionError) -> Self {
        Fault::new(FaultFelkod::Valideringsfel)
            .with_message(e.swedish())
            .with_message(e.to_string())
    }
}
