//! The bundled SSBTEK v10 contract: the WSDL, the composite XSD and the XSDs of
//! each slot's own data model (public contract, MIT, Sundsvalls kommun; see
//! `contracts/ssbtek-v10/LICENSE` at the repository root).
//!
//! The relay serves these files (`?wsdl`, `?xsd=NAME`) and the conformance kit
//! validates adapters' payloads against them. Which files a slot brings is an
//! exhaustive `match` on [`Slot`] ([`Slot::schemas`]): a new agency does not
//! compile until its data model is named here (an empty list when the composite
//! XSD alone describes it).

use crate::Slot;

/// One file of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractFile {
    /// The path below the schema root, as the WSDL and the XSDs import it.
    pub path: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! contract_file {
    ($path:literal) => {
        ContractFile {
            path: $path,
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../contracts/ssbtek-v10/schemas/",
                $path
            )),
        }
    };
}

/// The service description.
pub const WSDL: ContractFile = contract_file!(
    "se/forsakringskassan/schema/integration/ssbt/_10/Sammansatt_Bastjanst_v10.wsdl"
);

/// The composite question and answer (`hamtaBastjanstInformation`, ...).
pub const COMPOSITE_XSD: ContractFile =
    contract_file!("se/forsakringskassan/schema/integration/ssbt/_10/sammansatt_bastjanst_v10.xsd");

const AF: &[ContractFile] = &[contract_file!(
    "se/arbetsformedlingen/api/arbetssokande/ersattningsstod/v2/ers_stod.xsd"
)];
const SKV: &[ContractFile] = &[contract_file!(
    "se/rsv/zg/bs/service/ws/beskattningws/ZgBsBeskattningWSService_schema.xsd"
)];
const SO: &[ContractFile] = &[contract_file!(
    "schemas/ubpservice/int014/UnemploymentBenefitPaymentService.xsd"
)];
const TNS: &[ContractFile] = &[
    contract_file!(
        "se/transportstyrelsen/schema/ssbtek/hamtauppgifterresponder/_1/HamtaUppgifterResponder_1.0.xsd"
    ),
    contract_file!("se/transportstyrelsen/schema/ssbtek/fordon/_1/fordon_1.0.xsd"),
    contract_file!("se/transportstyrelsen/schema/ssbtek/person/_1/person_1.0.xsd"),
];
const MIV: &[ContractFile] = &[contract_file!(
    "se/migrationsverket/schema/ssbtek/_1/SSBTEKWebService_schema1.xsd"
)];

impl Slot {
    /// The XSDs of this slot's own data model that the composite XSD imports
    /// (none for CSN and FK: their data is a base64 document the composite XSD
    /// describes as a string).
    pub const fn schemas(self) -> &'static [ContractFile] {
        match self {
            Slot::Af => AF,
            Slot::Csn | Slot::Fk => &[],
            Slot::Skv => SKV,
            Slot::So => SO,
            Slot::Tns => TNS,
            Slot::Miv => MIV,
        }
    }
}

/// Every file of the contract: the WSDL, the composite XSD, then each slot's
/// schemas in XSD order.
pub fn files() -> impl Iterator<Item = &'static ContractFile> {
    [&WSDL, &COMPOSITE_XSD]
        .into_iter()
        .chain(Slot::ALL.into_iter().flat_map(|s| s.schemas()))
}

/// The file at `path`, if the contract has one.
pub fn file(path: &str) -> Option<&'static ContractFile> {
    files().find(|f| f.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_location_in_the_contract_is_a_bundled_file() {
        let mut imported = 0;
        for f in files() {
            let Ok(text) = std::str::from_utf8(f.bytes) else {
                continue; // UTF-16 (INT014) imports nothing.
            };
            let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d);
            for part in text.split("schemaLocation=\"").skip(1) {
                let rel = part.split('"').next().unwrap_or_default();
                let mut path: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for seg in rel.split('/') {
                    match seg {
                        ".." => {
                            path.pop();
                        }
                        "." => {}
                        s => path.push(s),
                    }
                }
                let path = path.join("/");
                assert!(
                    file(&path).is_some(),
                    "{} imports {path}, not bundled",
                    f.path
                );
                imported += 1;
            }
        }
        assert!(imported > 0);
        assert_eq!(files().count(), 9);
    }
}
