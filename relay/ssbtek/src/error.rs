//! Why a question was refused: [`QuestionError`] names the field (a path built
//! only from schema names) and the [`Rule`] it broke. Neither ever carries a
//! value from the input, so both can go to logs and back to the caller.

use std::borrow::Cow;
use std::fmt;

use relay_ident::IdentError;

use crate::NS_SSBT;

/// A refused question: which field, and which rule it broke.
///
/// `Display` gives `field: rule` in English; [`QuestionError::swedish`] the same in
/// Swedish. The field is a path relative to `hamtaBastjanstInformation`, such as
/// `generellaFrageparametrar/personidentitet` or `specifikaFrageparametrar/FK/@inkludera`,
/// or `document` for faults in the XML itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct QuestionError {
    field: Cow<'static, str>,
    rule: Rule,
}

impl QuestionError {
    pub(crate) fn new(field: impl Into<Cow<'static, str>>, rule: Rule) -> Self {
        Self {
            field: field.into(),
            rule,
        }
    }

    pub(crate) fn document(rule: Rule) -> Self {
        Self::new("document", rule)
    }

    /// The path of the offending field.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The rule the field broke.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The same message in Swedish, for `felmeddelande`.
    pub fn swedish(&self) -> String {
        format!("{}: {}", self.field, self.rule.swedish())
    }
}

/// Which layer a [`Rule`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// The bytes are not an acceptable XML document (syntax, encoding, DTD, limits).
    Document,
    /// The document breaks the v10 XSD.
    Schema,
    /// The document is schema-valid but breaks a rule the relay adds: real
    /// identity numbers, sane periods, a stated purpose and legal basis.
    Content,
}

/// A rule a question broke. Texts hold only limits from the configuration and
/// schema names, never input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    #[error("document larger than {limit} bytes")]
    DocumentTooLarge { limit: usize },
    #[error("encoding not supported (UTF-8 or ISO-8859-1 only)")]
    UnsupportedEncoding,
    #[error("bytes not valid in the declared encoding")]
    InvalidEncoding,
    #[error("not well-formed XML")]
    NotWellFormed,
    #[error("DOCTYPE declarations are not allowed")]
    Doctype,
    #[error("only the five predefined entity references are allowed")]
    UndeclaredEntity,
    #[error("character not allowed in XML")]
    InvalidCharacter,
    #[error("elements nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("text longer than {limit} bytes")]
    TextTooLong { limit: usize },
    #[error("more than {limit} attributes on one element")]
    TooManyAttributes { limit: usize },
    #[error("a name longer than {limit} bytes")]
    NameTooLong { limit: usize },
    #[error("an attribute is repeated")]
    RepeatedAttribute,
    #[error("no hamtaBastjanstInformation element in namespace {NS_SSBT}")]
    NotFound,
    #[error("the root element is not hamtaBastjanstInformation")]
    WrongRoot,

    #[error("element in the wrong namespace (expected {NS_SSBT})")]
    WrongNamespace,
    #[error("required element is missing")]
    Missing,
    #[error("element is out of order")]
    OutOfOrder,
    #[error("element occurs more often than allowed")]
    TooMany,
    #[error("unknown element (child number {position})")]
    UnknownElement { position: usize },
    #[error("attribute not allowed here")]
    UnknownAttribute,
    #[error("required attribute is missing")]
    MissingAttribute,
    #[error("text not allowed in this element")]
    UnexpectedText,
    #[error("child elements not allowed in this element")]
    UnexpectedChildren,
    #[error("must not be empty")]
    Empty,
    #[error("not an xsd:boolean (true, false, 1 or 0)")]
    NotBoolean,
    #[error("not an xsd:date (YYYY-MM-DD, optional time zone)")]
    NotDate,
    #[error("not an xsd:dateTime (YYYY-MM-DDThh:mm:ss, optional fraction and time zone)")]
    NotDateTime,
    #[error("not an xsd:short")]
    NotShort,
    #[error("not valid base64")]
    NotBase64,
    #[error("does not match the pattern {pattern}")]
    Pattern { pattern: &'static str },

    #[error("not a valid personnummer or samordningsnummer: {0}")]
    Personnummer(IdentError),
    #[error("not a valid organisation number: {0}")]
    Organisationsnummer(IdentError),
    #[error("fromDatum is after tomDatum")]
    PeriodReversed,
    #[error("period longer than {max_months} months")]
    PeriodTooLong { max_months: u32 },
    #[error("the LEFI request is not a JSON object")]
    LefiNotJson,
    #[error("the LEFI request is larger than {limit} bytes")]
    LefiTooLarge { limit: usize },
    #[error("the LEFI request is nested deeper than {limit}")]
    LefiTooDeep { limit: usize },
    #[error("the LEFI request asks about another person than personidentitet")]
    LefiOtherPerson,
}

impl Rule {
    /// Which layer the rule belongs to.
    pub fn kind(&self) -> RuleKind {
        use Rule::*;
        match self {
            DocumentTooLarge { .. }
            | UnsupportedEncoding
            | InvalidEncoding
            | NotWellFormed
            | Doctype
            | UndeclaredEntity
            | InvalidCharacter
            | TooDeep { .. }
            | TooManyElements { .. }
            | TextTooLong { .. }
            | TooManyAttributes { .. }
            | NameTooLong { .. }
            | RepeatedAttribute
            | NotFound
            | WrongRoot => RuleKind::Document,
            WrongNamespace
            | Missing
            | OutOfOrder
            | TooMany
            | UnknownElement { .. }
            | UnknownAttribute
            | MissingAttribute
            | UnexpectedText
            | UnexpectedChildren
            | Empty
            | NotBoolean
            | NotDate
            | NotDateTime
            | NotShort
            | NotBase64
            | Pattern { .. } => RuleKind::Schema,
            Personnummer(_)
            | Organisationsnummer(_)
            | PeriodReversed
            | PeriodTooLong { .. }
            | LefiNotJson
            | LefiTooLarge { .. }
            | LefiTooDeep { .. }
            | LefiOtherPerson => RuleKind::Content,
        }
    }

    /// The rule in Swedish.
    pub fn swedish(&self) -> Cow<'static, str> {
        use Rule::*;
        let s = match self {
            DocumentTooLarge { limit } => {
                return format!("dokumentet är större än {limit} byte").into();
            }
            UnsupportedEncoding => "teckenkodningen stöds inte (endast UTF-8 eller ISO-8859-1)",
            InvalidEncoding => "byte som inte är giltiga i den angivna teckenkodningen",
            NotWellFormed => "inte välformad XML",
            Doctype => "DOCTYPE-deklarationer är inte tillåtna",
            UndeclaredEntity => "endast de fem fördefinierade entitetsreferenserna är tillåtna",
            InvalidCharacter => "tecken som inte är tillåtet i XML",
            TooDeep { limit } => {
                return format!("element nästlade djupare än {limit} nivåer").into();
            }
            TooManyElements { limit } => return format!("fler än {limit} element").into(),
            TextTooLong { limit } => return format!("text längre än {limit} byte").into(),
            TooManyAttributes { limit } => {
                return format!("fler än {limit} attribut på ett element").into();
            }
            NameTooLong { limit } => return format!("ett namn längre än {limit} byte").into(),
            RepeatedAttribute => "ett attribut förekommer två gånger",
            NotFound => {
                return format!("inget hamtaBastjanstInformation-element i namnrymden {NS_SSBT}")
                    .into();
            }
            WrongRoot => "rotelementet är inte hamtaBastjanstInformation",
            WrongNamespace => {
                return format!("elementet har fel namnrymd (förväntad {NS_SSBT})").into();
            }
            Missing => "obligatoriskt element saknas",
            OutOfOrder => "elementet står i fel ordning",
            TooMany => "elementet förekommer fler gånger än tillåtet",
            UnknownElement { position } => {
                return format!("okänt element (barn nummer {position})").into();
            }
            UnknownAttribute => "attributet är inte tillåtet här",
            MissingAttribute => "obligatoriskt attribut saknas",
            UnexpectedText => "text är inte tillåten i elementet",
            UnexpectedChildren => "underelement är inte tillåtna i elementet",
            Empty => "får inte vara tomt",
            NotBoolean => "inte ett xsd:boolean (true, false, 1 eller 0)",
            NotDate => "inte ett xsd:date (ÅÅÅÅ-MM-DD, ev. tidszon)",
            NotDateTime => "inte ett xsd:dateTime (ÅÅÅÅ-MM-DDThh:mm:ss, ev. decimaler och tidszon)",
            NotShort => "inte ett xsd:short",
            NotBase64 => "inte giltig base64",
            Pattern { pattern } => return format!("matchar inte mönstret {pattern}").into(),
            Personnummer(e) => {
                return format!(
                    "inte ett giltigt personnummer eller samordningsnummer: {}",
                    ident_swedish(e)
                )
                .into();
            }
            Organisationsnummer(e) => {
                return format!("inte ett giltigt organisationsnummer: {}", ident_swedish(e))
                    .into();
            }
            PeriodReversed => "fromDatum är senare än tomDatum",
            PeriodTooLong { max_months } => {
                return format!("perioden är längre än {max_months} månader").into();
            }
            LefiNotJson => "LEFI-frågan är inte ett JSON-objekt",
            LefiTooLarge { limit } => {
                return format!("LEFI-frågan är större än {limit} byte").into();
            }
            LefiTooDeep { limit } => {
                return format!("LEFI-frågan är nästlad djupare än {limit} nivåer").into();
            }
            LefiOtherPerson => "LEFI-frågan gäller en annan person än personidentitet",
        };
        Cow::Borrowed(s)
    }
}

fn ident_swedish(e: &IdentError) -> &'static str {
    match e {
        IdentError::Format { .. } => "fel längd eller tecken",
        IdentError::Century => "sekelsiffrorna måste vara 18, 19 eller 20",
        IdentError::Date => "inte ett giltigt datum",
        IdentError::CheckDigit => "kontrollsiffran stämmer inte",
        IdentError::NotAnOrganisation => {
            "tredje siffran i ett organisationsnummer måste vara minst 2"
        }
        IdentError::OrganisationPrefix => "ett tolvsiffrigt organisationsnummer måste börja med 16",
    }
}

/// A path under `hamtaBastjanstInformation`, built from schema names only.
#[derive(Clone, Debug)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root() -> Self {
        Path(String::new())
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_owned())
        } else {
            Path(format!("{}/{name}", self.0))
        }
    }

    pub(crate) fn attribute(&self, name: &str) -> Self {
        self.child(&format!("@{name}"))
    }

    pub(crate) fn error(&self, rule: Rule) -> QuestionError {
        let field = if self.0.is_empty() {
            "hamtaBastjanstInformation".to_owned()
        } else {
            self.0.clone()
        };
        QuestionError::new(field, rule)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
