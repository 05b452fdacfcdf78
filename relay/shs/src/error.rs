//! SHS error codes and the one error type of this crate.

use std::fmt;

/// The SHS 1.2 error codes, with Axel's default `errorinfo` texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    UnresolvedReceiver,
    UnknownReceiver,
    UnknownSender,
    UnknownProductType,
    IllegalReceiver,
    IllegalSender,
    IllegalOriginator,
    IllegalEndRecipient,
    IllegalProductType,
    IllegalMessageStructure,
    IllegalDatapartContent,
    MissingAgreement,
    MissingDeliveryAddress,
    MissingDeliveryExecution,
    OtherError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 15] = [
        Self::UnresolvedReceiver,
        Self::UnknownReceiver,
        Self::UnknownSender,
        Self::UnknownProductType,
        Self::IllegalReceiver,
        Self::IllegalSender,
        Self::IllegalOriginator,
        Self::IllegalEndRecipient,
        Self::IllegalProductType,
        Self::IllegalMessageStructure,
        Self::IllegalDatapartContent,
        Self::MissingAgreement,
        Self::MissingDeliveryAddress,
        Self::MissingDeliveryExecution,
        Self::OtherError,
    ];

    /// The code as written in `X-shs-errorcode` and `shs.management/error/@errorcode`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnresolvedReceiver => "UnresolvedReceiver",
            Self::UnknownReceiver => "UnknownReceiver",
            Self::UnknownSender => "UnknownSender",
            Self::UnknownProductType => "UnknownProductType",
            Self::IllegalReceiver => "IllegalReceiver",
            Self::IllegalSender => "IllegalSender",
            Self::IllegalOriginator => "IllegalOriginator",
            Self::IllegalEndRecipient => "IllegalEndRecipient",
            Self::IllegalProductType => "IllegalProductType",
            Self::IllegalMessageStructure => "IllegalMessageStructure",
            Self::IllegalDatapartContent => "IllegalDatapartContent",
            Self::MissingAgreement => "MissingAgreement",
            Self::MissingDeliveryAddress => "MissingDeliveryAddress",
            Self::MissingDeliveryExecution => "MissingDeliveryExecution",
            Self::OtherError => "OtherError",
        }
    }

    /// Axel's default `errorinfo` for the code.
    pub const fn default_text(self) -> &'static str {
        match self {
            Self::UnresolvedReceiver => "Unable to resolve receiver",
            Self::UnknownReceiver => "Receiving actor unknown",
            Self::UnknownSender => "Sending actor unknown",
            Self::UnknownProductType => "Unknown product type",
            Self::IllegalReceiver => "Illegal syntax for receiving actor",
            Self::IllegalSender => "Illegal syntax for sending actor",
            Self::IllegalOriginator => "Illegal syntax for originator",
            Self::IllegalEndRecipient => "Illegal syntax for end recipient",
            Self::IllegalProductType => "Illegal product type",
            Self::IllegalMessageStructure => "Illegal Message Structure",
            Self::IllegalDatapartContent => {
                "One or more dataparts contains illegally formatted information"
            }
            Self::MissingAgreement => "Agreement missing at local delivery",
            Self::MissingDeliveryAddress => "Delivery address not found in directory",
            Self::MissingDeliveryExecution => "Delivery of message failed",
            Self::OtherError => "",
        }
    }

    /// Parses a code as written on the wire.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An SHS error: a code and an `errorinfo` text. Texts are written by this crate
/// and its callers and never contain message content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {info}")]
pub struct ShsError {
    pub code: ErrorCode,
    pub info: String,
    /// When the refusal is about rate: seconds after which a retry may succeed
    /// (sent as HTTP `Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl ShsError {
    pub fn new(code: ErrorCode, info: impl Into<String>) -> Self {
        Self {
            code,
            info: info.into(),
            retry_after_s: None,
        }
    }

    /// The same error with a retry hint.
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after_s = seconds;
        self
    }

    /// `IllegalMessageStructure` with the given reason.
    pub fn structure(info: impl Into<String>) -> Self {
        Self::new(ErrorCode::IllegalMessageStructure, info)
    }
}

impl From<ErrorCode> for ShsError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.default_text())
    }
}
