//! The SHS message container: a `multipart/mixed` MIME entity whose first part is
//! the label (`text/xml`) and whose further parts are the data parts, one per
//! `content/data` element, in order.
//!
//! [`MessageReader`] parses **streaming** over any `AsyncRead`: it yields the
//! label, then each data part's headers and its decoded body chunk by chunk, so a
//! part of hundreds of MB flows through with bounded memory. CRLF and LF line
//! ends, preambles, `binary`/`7bit`/`8bit`/`base64`/`quoted-printable`, lenient
//! header parameters, ISO-8859-1 filenames and RFC 2231/2047 forms are accepted;
//! a missing closing boundary, a first part that is not `text/xml`, fewer parts
//! than the label lists, and every exceeded [`Limits`] value are
//! `IllegalMessageStructure`.
//!
//! [`write_message`] builds a message streaming from part readers; [`ShsMessage`]
//! is the owned form for small messages.

use base64::Engine;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ShsError;
use crate::label::{ContentBody, DataRef, Label};

/// Size limits; every one exceeded is answered with `IllegalMessageStructure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The label part (overrides `label_document.max_bytes`).
    pub max_label_bytes: usize,
    /// The label document's other bounds (depth, elements, attributes, name
    /// and text sizes).
    pub label_document: crate::xml::DocumentLimits,
    /// One header block (top-level or a part's).
    pub max_header_bytes: usize,
    /// Data parts (the label not counted).
    pub max_parts: usize,
    /// One data part, as transferred.
    pub max_part_bytes: u64,
    /// The whole message.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_label_bytes: crate::label::DEFAULT_MAX_LABEL_BYTES,
            label_document: crate::xml::LABEL_LIMITS,
            max_header_bytes: 16 * 1024,
            max_parts: 100,
            max_part_bytes: 1024 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// `Content-Transfer-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferEncoding {
    #[default]
    Binary,
    SevenBit,
    EightBit,
    Base64,
    QuotedPrintable,
}

impl TransferEncoding {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "binary" | "" => Some(Self::Binary),
            "7bit" => Some(Self::SevenBit),
            "8bit" => Some(Self::EightBit),
            "base64" => Some(Self::Base64),
            "quoted-printable" => Some(Self::QuotedPrintable),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::SevenBit => "7bit",
            Self::EightBit => "8bit",
            Self::Base64 => "base64",
            Self::QuotedPrintable => "quoted-printable",
        }
    }
}

/// The headers of one MIME part, as far as SHS needs them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHeaders {
    /// `type/subtype`, lower-cased (`text/xml`); `application/octet-stream` when absent.
    pub mime_type: String,
    pub charset: Option<String>,
    pub transfer_encoding: TransferEncoding,
    /// From `Content-Disposition: filename` or `Content-Type: name`, decoded.
    pub filename: Option<String>,
}

impl PartHeaders {
    /// `Content-Type` value to write.
    pub fn content_type(&self) -> String {
        let mut ct = self.mime_type.clone();
        if let Some(c) = &self.charset {
            ct.push_str("; charset=");
            ct.push_str(c);
        }
        if let Some(f) = &self.filename {
            ct.push_str("; name=");
            ct.push_str(&quote_param(f));
        }
        ct
    }
}

/// One data part of an owned message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPart {
    pub headers: PartHeaders,
    /// From the label's `data/@datapartType`.
    pub datapart_type: String,
    /// Decoded body.
    pub body: Bytes,
}

/// An owned SHS message (for small messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShsMessage {
    pub label: Label,
    pub parts: Vec<DataPart>,
}

impl ShsMessage {
    /// Parses a whole message held in memory. `http_content_type` is the HTTP
    /// `Content-Type` when the body is a bare multipart (its boundary is used).
    pub async fn parse(
        bytes: &[u8],
        http_content_type: Option<&str>,
        limits: Limits,
    ) -> Result<Self, ShsError> {
        let (mut reader, label) = MessageReader::open(bytes, http_content_type, limits).await?;
        let mut parts = Vec::new();
        let types: Vec<String> = label
            .data()
            .iter()
            .map(|d| d.datapart_type.clone())
            .collect();
        while let Some(headers) = reader.next_part().await? {
            let mut body = Vec::new();
            while let Some(chunk) = reader.read_chunk().await? {
                body.extend_from_slice(&chunk);
            }
            parts.push(DataPart {
                headers,
                // The reader yields no more parts than the label lists.
                datapart_type: types.get(parts.len()).cloned().unwrap_or_default(),
                body: Bytes::from(body),
            });
        }
        Ok(Self { label, parts })
    }

    /// Writes the message (label content list regenerated from the parts).
    pub async fn to_bytes(&self) -> Vec<u8> {
        // Room for the parts and the label and headers: written without
        // growing (and so without copies of the bodies left behind).
        let bodies: usize = self.parts.iter().map(|p| p.body.len()).sum();
        let mut out = Vec::with_capacity(bodies + 4096);
        let parts = self
            .parts
            .iter()
            .map(|p| OutPart {
                headers: p.headers.clone(),
                datapart_type: p.datapart_type.clone(),
                len: Some(p.body.len() as u64),
                body: Box::new(std::io::Cursor::new(p.body.clone())),
            })
            .collect();
        // Writing to a Vec cannot fail.
        let _ = write_message(&mut out, &self.label, parts, &new_boundary()).await;
        out
    }
}

/// A fresh boundary: random, so it does not occur in any body.
pub fn new_boundary() -> String {
    format!("----=_Part_{}", uuid::Uuid::new_v4().simple())
}

enum Decoder {
    Plain,
    Base64(Vec<u8>),
    QuotedPrintable(Vec<u8>),
}

impl Decoder {
    fn new(te: TransferEncoding) -> Self {
        match te {
            TransferEncoding::Base64 => Self::Base64(Vec::new()),
            TransferEncoding::QuotedPrintable => Self::QuotedPrintable(Vec::new()),
            _ => Self::Plain,
        }
    }

    /// Decodes what it can of `input`, keeping an incomplete tail for later.
    fn feed(&mut self, input: &[u8], last: bool) -> Result<Vec<u8>, ShsError> {
        match self {
            Self::Plain => Ok(input.to_vec()),
            Self::Base64(carry) => {
                carry.extend(input.iter().copied().filter(|b| !b.is_ascii_whitespace()));
                let usable = if last {
                    carry.len()
                } else {
                    carry.len() / 4 * 4
                };
                let chunk: Vec<u8> = carry.drain(..usable).collect();
                if chunk.is_empty() {
                    return Ok(Vec::new());
                }
                base64::engine::general_purpose::STANDARD
                    .decode(&chunk)
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&chunk))
                    .map_err(|_| ShsError::structure("invalid base64 in a data part"))
            }
            Self::QuotedPrintable(carry) => {
                carry.extend_from_slice(input);
                let data = std::mem::take(carry);
                let mut out = Vec::with_capacity(data.len());
                let mut rest: &[u8] = &data;
                while let Some((&b, tail)) = rest.split_first() {
                    if b != b'=' {
                        out.push(b);
                        rest = tail;
                        continue;
                    }
                    if tail.len() < 2 && !last {
                        // Incomplete escape: keep for the next chunk.
                        carry.extend_from_slice(rest);
                        break;
                    }
                    match tail {
                        // A soft line break.
                        [b'\r', b'\n', more @ ..] | [b'\n', more @ ..] => rest = more,
                        [h, l, more @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                            out.push(hex_value(*h) * 16 + hex_value(*l));
                            rest = more;
                        }
                        _ => {
                            // Lenient: a lone '=' stands for itself.
                            out.push(b'=');
                            rest = tail;
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

/// The value of one ASCII hex digit (0 for anything else).
fn hex_value(digit: u8) -> u8 {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
        .unwrap_or(0)
}

#[derive(PartialEq, Eq)]
enum State {
    /// At the start of a part's header block (just after a delimiter line).
    PartHeaders,
    /// Inside a part body.
    InBody,
    /// The closing delimiter was read.
    Closed,
}

/// Streaming reader of one SHS message.
pub struct MessageReader<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// `\n--boundary`.
    needle: Vec<u8>,
    limits: Limits,
    total: u64,
    part_bytes: u64,
    state: State,
    decoder: Decoder,
    expected_parts: usize,
    parts_started: usize,
}

const READ_SIZE: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// Reads the top-level headers (or takes the boundary from
    /// `http_content_type` for a bare multipart body), then the label part.
    pub async fn open(
        reader: R,
        http_content_type: Option<&str>,
        limits: Limits,
    ) -> Result<(Self, Label), ShsError> {
        let mut this = Self {
            reader,
            buf: Vec::with_capacity(READ_SIZE),
            pos: 0,
            eof: false,
            needle: Vec::new(),
            limits,
            total: 0,
            part_bytes: 0,
            state: State::PartHeaders,
            decoder: Decoder::Plain,
            expected_parts: 0,
            parts_started: 0,
        };
        this.fill_at_least(2).await?;
        let starts_bare = this.available().starts_with(b"--");
        let boundary = if starts_bare {
            match http_content_type.and_then(|ct| param(ct, "boundary")) {
                Some(b) => b,
                None => {
                    // The first line is the delimiter: learn the boundary from it
                    // (without consuming it).
                    loop {
                        if let Some(i) = memchr::memchr(b'\n', this.available()) {
                            let line = this.available().get(2..i).unwrap_or_default();
                            break String::from_utf8_lossy(line).trim().to_owned();
                        }
                        if this.available().len() > 1000 || !this.fill().await? {
                            return Err(ShsError::structure("no MIME boundary found"));
                        }
                    }
                }
            }
        } else {
            let headers = this.read_header_block().await?;
            let ct = header(&headers, "content-type")
                .ok_or_else(|| ShsError::structure("not a MIME message: no Content-Type header"))?;
            if !ct.trim().to_ascii_lowercase().starts_with("multipart/") {
                return Err(ShsError::structure("not a multipart MIME message"));
            }
            param(&ct, "boundary")
                .ok_or_else(|| ShsError::structure("multipart without a boundary"))?
        };
        if boundary.is_empty() || boundary.len() > 200 {
            return Err(ShsError::structure("invalid boundary"));
        }
        this.needle = [b"\n--".as_slice(), boundary.as_bytes()].concat();
        this.skip_preamble().await?;
        // The label part.
        let headers = this.next_part_headers().await?.ok_or_else(|| {
            ShsError::structure("SHS message must contain at least two mime bodyparts")
        })?;
        if headers.mime_type != "text/xml" {
            return Err(ShsError::structure(format!(
                "First bodypart is not text/xml but {}",
                headers.mime_type
            )));
        }
        let mut label_bytes = Vec::new();
        while let Some(chunk) = this.read_chunk_inner().await? {
            if label_bytes.len() + chunk.len() > this.limits.max_label_bytes {
                return Err(ShsError::structure(format!(
                    "label larger than {} bytes",
                    this.limits.max_label_bytes
                )));
            }
            label_bytes.extend_from_slice(&chunk);
        }
        let label = Label::parse_with(
            &label_bytes,
            &crate::xml::DocumentLimits {
                max_bytes: this.limits.max_label_bytes,
                ..this.limits.label_document
            },
        )?;
        if let ContentBody::Compound { .. } = label.content.body {
            return Err(ShsError::structure("compound message not supported"));
        }
        this.expected_parts = label.data().len();
        if this.expected_parts == 0 {
            return Err(ShsError::structure(
                "SHS message must contain at least two mime bodyparts",
            ));
        }
        if this.expected_parts > this.limits.max_parts {
            return Err(ShsError::structure(format!(
                "more than {} data parts",
                this.limits.max_parts
            )));
        }
        this.parts_started = 0;
        Ok((this, label))
    }

    /// The headers of the next data part, or `None` after the last one the label
    /// lists (the rest of the message is then read up to the closing boundary,
    /// which must be there).
    pub async fn next_part(&mut self) -> Result<Option<PartHeaders>, ShsError> {
        while self.state == State::InBody {
            self.read_chunk_inner().await?;
        }
        if self.parts_started == self.expected_parts {
            // Extra parts are ignored, but the message must be complete.
            while self.state != State::Closed {
                if self.state == State::PartHeaders {
                    self.next_part_headers().await?;
                }
                while self.state == State::InBody {
                    self.read_chunk_inner().await?;
                }
            }
            return Ok(None);
        }
        match self.next_part_headers().await? {
            Some(h) => {
                self.parts_started += 1;
                Ok(Some(h))
            }
            None => Err(ShsError::structure(format!(
                "the label lists {} data parts but the message has {}",
                self.expected_parts, self.parts_started
            ))),
        }
    }

    /// The next decoded chunk of the current data part; `None` at its end.
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>, ShsError> {
        if self.state != State::InBody {
            return Ok(None);
        }
        self.read_chunk_inner().await
    }

    fn available(&self) -> &[u8] {
        // `pos` never passes the end of `buf`.
        self.buf.get(self.pos..).unwrap_or_default()
    }

    async fn fill(&mut self) -> Result<bool, ShsError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + READ_SIZE, 0);
        let n = self
            .reader
            .read(self.buf.get_mut(start..).unwrap_or_default())
            .await
            .map_err(|e| ShsError::structure(format!("reading the message failed: {e}")))?;
        self.buf.truncate(start + n);
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.total += n as u64;
        if self.total > self.limits.max_total_bytes {
            return Err(ShsError::structure(format!(
                "message larger than {} bytes",
                self.limits.max_total_bytes
            )));
        }
        Ok(true)
    }

    async fn fill_at_least(&mut self, n: usize) -> Result<(), ShsError> {
        while self.available().len() < n && self.fill().await? {}
        Ok(())
    }

    async fn read_line(&mut self) -> Result<Vec<u8>, ShsError> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', self.available()) {
                let line = self.available().get(..i).unwrap_or_default().to_vec();
                self.pos += i + 1;
                let line = line.strip_suffix(b"\r").map(<[u8]>::to_vec).unwrap_or(line);
                return Ok(line);
            }
            if self.available().len() > self.limits.max_header_bytes {
                return Err(ShsError::structure("header line too long"));
            }
            if !self.fill().await? {
                return Err(ShsError::structure("message ends inside a header"));
            }
        }
    }

    /// Reads header lines up to the empty line; unfolds continuation lines.
    async fn read_header_block(&mut self) -> Result<Vec<(String, String)>, ShsError> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut size = 0;
        loop {
            let line = self.read_line().await?;
            size += line.len() + 2;
            if size > self.limits.max_header_bytes {
                return Err(ShsError::structure("header block too large"));
            }
            if line.is_empty() {
                return Ok(headers);
            }
            // Header bytes are read as ISO-8859-1 (raw 8-bit filenames).
            let text: String = line.iter().map(|&b| char::from(b)).collect();
            if matches!(line.first(), Some(b' ' | b'\t')) {
                match headers.last_mut() {
                    Some((_, v)) => {
                        v.push(' ');
                        v.push_str(text.trim());
                    }
                    None => return Err(ShsError::structure("malformed header")),
                }
            } else if let Some((name, value)) = text.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            } else {
                return Err(ShsError::structure("not a MIME message: malformed header"));
            }
        }
    }

    /// Skips anything before the first delimiter line.
    async fn skip_preamble(&mut self) -> Result<(), ShsError> {
        let delimiter = self.needle.get(1..).unwrap_or_default().to_vec();
        loop {
            let avail = self.available();
            if avail.starts_with(&delimiter) {
                return self.after_delimiter().await;
            }
            if let Some(i) = memchr::memmem::find(avail, &self.needle) {
                self.pos += i + 1;
                continue;
            }
            if avail.len() > self.limits.max_header_bytes {
                return Err(ShsError::structure("no MIME boundary found"));
            }
            let keep = avail.len().saturating_sub(self.needle.len());
            self.pos += keep;
            if !self.fill().await? {
                return Err(ShsError::structure("no MIME boundary found"));
            }
        }
    }

    /// At a delimiter (`--boundary`): consume it and decide close or next part.
    async fn after_delimiter(&mut self) -> Result<(), ShsError> {
        let len = self.needle.len() - 1;
        self.fill_at_least(len + 2).await?;
        self.pos += len;
        if self.available().starts_with(b"--") {
            self.pos += 2;
            self.state = State::Closed;
            return Ok(());
        }
        // Transport padding, then the line end.
        let rest = self.read_line().await?;
        if !rest.iter().all(|b| *b == b' ' || *b == b'\t') {
            return Err(ShsError::structure("garbage after a MIME boundary"));
        }
        self.state = State::PartHeaders;
        Ok(())
    }

    async fn next_part_headers(&mut self) -> Result<Option<PartHeaders>, ShsError> {
        if self.state == State::Closed {
            return Ok(None);
        }
        let raw = self.read_header_block().await?;
        let ct = header(&raw, "content-type").unwrap_or_default();
        let mime_type = ct
            .split(';')
            .next()
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "application/octet-stream".into());
        let te = header(&raw, "content-transfer-encoding").unwrap_or_default();
        let transfer_encoding = TransferEncoding::parse(&te)
            .ok_or_else(|| ShsError::structure("unknown Content-Transfer-Encoding"))?;
        let filename = header(&raw, "content-disposition")
            .and_then(|d| param(&d, "filename"))
            .or_else(|| param(&ct, "name"));
        self.state = State::InBody;
        self.part_bytes = 0;
        self.decoder = Decoder::new(transfer_encoding);
        Ok(Some(PartHeaders {
            mime_type,
            charset: param(&ct, "charset"),
            transfer_encoding,
            filename,
        }))
    }

    async fn read_chunk_inner(&mut self) -> Result<Option<Bytes>, ShsError> {
        loop {
            if self.state != State::InBody {
                return Ok(None);
            }
            let avail = self.available();
            if let Some(i) = memchr::memmem::find(avail, &self.needle) {
                let before = avail.get(..i).unwrap_or_default();
                let data = before.strip_suffix(b"\r").unwrap_or(before).to_vec();
                self.pos += i + 1;
                self.count_part(data.len())?;
                let decoded = self.decoder.feed(&data, true)?;
                self.after_delimiter().await?;
                if decoded.is_empty() {
                    return Ok(None);
                }
                // The part is over; hand out its last bytes, then `None` next call.
                return Ok(Some(Bytes::from(decoded)));
            }
            // Keep a tail that may hold the start of the delimiter (and a '\r').
            let safe = avail.len().saturating_sub(self.needle.len());
            if safe >= READ_SIZE / 2 || (self.eof && safe > 0) {
                let data = avail.get(..safe).unwrap_or_default().to_vec();
                self.pos += safe;
                self.count_part(data.len())?;
                let decoded = self.decoder.feed(&data, false)?;
                if !decoded.is_empty() {
                    return Ok(Some(Bytes::from(decoded)));
                }
                continue;
            }
            if !self.fill().await? {
                return Err(ShsError::structure(
                    "message ends without its closing MIME boundary",
                ));
            }
        }
    }

    fn count_part(&mut self, n: usize) -> Result<(), ShsError> {
        self.part_bytes += n as u64;
        if self.part_bytes > self.limits.max_part_bytes {
            return Err(ShsError::structure(format!(
                "data part larger than {} bytes",
                self.limits.max_part_bytes
            )));
        }
        Ok(())
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// A parameter of a structured header value, leniently: quoted or not, trailing
/// semicolons, RFC 2231 (`name*=charset''percent-encoded`, continuations
/// `name*0=`) and RFC 2047 encoded words; raw 8-bit bytes were read as ISO-8859-1.
pub fn param(value: &str, name: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    let mut continued: Vec<(usize, String, bool)> = Vec::new();
    for piece in split_params(value).into_iter().skip(1) {
        let Some((k, v)) = piece.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = unquote(v.trim());
        if k == name {
            plain = Some(v);
        } else if k == format!("{name}*") {
            extended = Some(decode_2231(&v));
        } else if let Some(rest) = k.strip_prefix(&format!("{name}*")) {
            let (n, enc) = match rest.strip_suffix('*') {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if let Ok(n) = n.parse::<usize>() {
                continued.push((n, v, enc));
            }
        }
    }
    if let Some(e) = extended {
        return Some(e);
    }
    if !continued.is_empty() {
        continued.sort_by_key(|(n, _, _)| *n);
        let joined: String = continued.iter().map(|(_, v, _)| v.as_str()).collect();
        return Some(
            if continued.first().is_some_and(|(_, _, encoded)| *encoded) {
                decode_2231(&joined)
            } else {
                joined
            },
        );
    }
    plain.map(|v| decode_2047(&v))
}

fn split_params(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in value.chars() {
        match c {
            ';' if !quoted => out.push(String::new()),
            _ => {
                if c == '"' {
                    quoted = !quoted;
                }
                if let Some(s) = out.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_owned(),
    }
}

/// Header chars were read as ISO-8859-1; get the raw bytes back.
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars().map(|c| u32::from(c).min(255) as u8).collect()
}

fn charset_decode(charset: &str, bytes: &[u8]) -> String {
    if charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8") {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&b, tail)) = rest.split_first() {
        match tail {
            [h, l, more @ ..] if b == b'%' && h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                out.push(hex_value(*h) * 16 + hex_value(*l));
                rest = more;
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    out
}

fn decode_2231(v: &str) -> String {
    let mut parts = v.splitn(3, '\'');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(charset), Some(_lang), Some(text)) => {
            charset_decode(charset, &percent_decode(&latin1_bytes(text)))
        }
        _ => charset_decode("utf-8", &percent_decode(&latin1_bytes(v))),
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`); other text as is.
fn decode_2047(v: &str) -> String {
    if !v.contains("=?") {
        return v.to_owned();
    }
    let mut out = String::new();
    let mut rest = v;
    while let Some((before, word)) = rest.split_once("=?") {
        out.push_str(before);
        let mut fields = word.splitn(3, '?');
        let (Some(charset), Some(enc), Some(tail)) = (fields.next(), fields.next(), fields.next())
        else {
            out.push_str("=?");
            out.push_str(word);
            return out;
        };
        let Some((text, after)) = tail.split_once("?=") else {
            out.push_str("=?");
            out.push_str(word);
            return out;
        };
        let bytes = if enc.eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default()
        } else {
            percent_decode(&latin1_bytes(&text.replace('_', " ").replace('=', "%")))
        };
        out.push_str(&charset_decode(charset, &bytes));
        rest = after.trim_start();
    }
    out.push_str(rest);
    out
}

fn quote_param(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// One part to write: headers, the label's datapartType, and a body reader.
pub struct OutPart {
    pub headers: PartHeaders,
    pub datapart_type: String,
    /// Written into the label as `no-of-bytes` when known.
    pub len: Option<u64>,
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

/// Writes a complete SHS message: top-level headers, the label (its content list
/// regenerated from `parts`, as Axel does), then each part streamed from its
/// reader (base64 encoded in 76-character lines when asked).
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    label: &Label,
    parts: Vec<OutPart>,
    boundary: &str,
) -> std::io::Result<()> {
    let mut label = label.clone();
    label.content.body = ContentBody::Data(
        parts
            .iter()
            .map(|p| DataRef {
                datapart_type: p.datapart_type.clone(),
                filename: p.headers.filename.clone(),
                no_of_bytes: p.len.filter(|n| *n > 0),
                no_of_records: None,
            })
            .collect(),
    );
    w.write_all(
        format!(
            "Subject: SHS Message\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; \r\n\tboundary=\"{boundary}\"\r\nContent-Transfer-Encoding: binary\r\n\r\n--{boundary}\r\nContent-Type: text/xml; charset=ISO-8859-1\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    w.write_all(&label.to_xml()).await?;
    for mut part in parts {
        let mut head = format!(
            "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: {}\r\n",
            latin1_header(&part.headers.content_type()),
            part.headers.transfer_encoding.as_str()
        );
        match &part.headers.filename {
            Some(f) => head.push_str(&format!(
                "Content-Disposition: attachment; filename={}\r\n\r\n",
                latin1_header(&quote_param(f))
            )),
            None => head.push_str("Content-Disposition: attachment\r\n\r\n"),
        }
        w.write_all(&latin1_bytes(&head)).await?;
        let base64 = part.headers.transfer_encoding == TransferEncoding::Base64;
        let mut buf = vec![0u8; 57 * 1024];
        let mut filled = 0;
        loop {
            // `filled` stays below `buf.len()` while reading.
            let n = part
                .body
                .read(buf.get_mut(filled..).unwrap_or_default())
                .await?;
            filled += n;
            if n != 0 && filled < buf.len() {
                continue;
            }
            if base64 {
                for line in buf.get(..filled).unwrap_or_default().chunks(57) {
                    let enc = base64::engine::general_purpose::STANDARD.encode(line);
                    w.write_all(enc.as_bytes()).await?;
                    w.write_all(b"\r\n").await?;
                }
            } else {
                w.write_all(buf.get(..filled).unwrap_or_default()).await?;
            }
            filled = 0;
            if n == 0 {
                break;
            }
        }
    }
    w.write_all(format!("\r\n--{boundary}--\r\n").as_bytes())
        .await?;
    w.flush().await
}

/// Header text keeps Latin-1 characters as single bytes (as SHS nodes expect);
/// anything beyond Latin-1 becomes `?`.
fn latin1_header(s: &str) -> String {
    s.chars()
        .map(|c| if u32::from(c) <= 255 { c } else { '?' })
        .collect()
}
