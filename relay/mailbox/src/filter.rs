//! The delivery service's list filters (Axel's `HeaderToFilterConverter` and
//! `MongoMessageLogService.listMessages`): parsing the query parameters with
//! their exact names and value forms, and selecting, ordering and capping the
//! waiting messages of one outbox. Engine-independent: a store engine narrows
//! the candidates cheaply and hands them to [`ListFilter::select`].

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::meta::{MessageMeta, MessageState, Outbox, Status, TransferType, shs_value};

/// Axel's default and fallback for `maxhits`.
pub const DEFAULT_MAX_HITS: usize = 200;

/// The `since` and label `datetime` format: `yyyy-MM-ddTHH:mm:ss`.
pub const SHS_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// A rejected list query parameter; the relay answers 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("bad value for list parameter '{param}': {value:?} (expected {expected})")]
    BadValue {
        param: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("list parameter '{param}' given more than once")]
    Repeated { param: &'static str },
}

impl FilterError {
    /// The offending query parameter.
    pub fn param(&self) -> &'static str {
        match self {
            Self::BadValue { param, .. } | Self::Repeated { param } => param,
        }
    }
}

/// `sortorder` / `arrivalorder`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

impl SortOrder {
    fn apply(self, o: Ordering) -> Ordering {
        match self {
            Self::Ascending => o,
            Self::Descending => o.reverse(),
        }
    }
}

/// `sortattribute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortAttribute {
    /// `originator` or `from`: both sort on the originator, or `from` when absent.
    Originator,
    EndRecipient,
    ProductType,
    Subject,
    ContentId,
    /// `corrid` (Axel spells it `-corrid`; both are accepted).
    CorrId,
    SequenceType,
    TransferType,
    /// `meta-<name>`: sorts on the value of the named `meta` element. (Axel sorts
    /// on the meta *name*, which orders nothing; this is the evident intent.)
    Meta(String),
}

impl SortAttribute {
    fn key<'a>(&self, m: &'a MessageMeta) -> Option<&'a str> {
        let l = &m.label;
        match self {
            Self::Originator => l.originator.as_deref().or(l.from.as_deref()),
            Self::EndRecipient => l.end_recipient.as_deref(),
            Self::ProductType => Some(&l.product),
            Self::Subject => l.subject.as_deref(),
            Self::ContentId => Some(&l.content_id),
            Self::CorrId => Some(&l.corr_id),
            Self::SequenceType => Some(l.sequence_type.as_str()),
            Self::TransferType => Some(l.transfer_type.as_str()),
            Self::Meta(name) => l.meta_value(name),
        }
    }
}

/// Which waiting messages a list request wants. [`ListFilter::default`] is a
/// request without parameters: production messages, arrival order, 200 hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// `producttype`: any of these products (plain form); empty means all.
    pub product_types: Vec<String>,
    /// `filter=noack`: only messages not yet acknowledged.
    pub no_ack: bool,
    /// `maxhits`.
    pub max_hits: usize,
    /// `status`.
    pub status: Status,
    /// `corrid`.
    pub corr_id: Option<String>,
    /// `contentid`.
    pub content_id: Option<String>,
    /// `originator`: matches the originator or the `from` address.
    pub originator: Option<String>,
    /// `endrecipient`.
    pub end_recipient: Option<String>,
    /// `since`: state timestamp at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// `sortattribute`.
    pub sort: Option<SortAttribute>,
    /// `sortorder`.
    pub sort_order: SortOrder,
    /// `arrivalorder`.
    pub arrival_order: SortOrder,
}

impl Default for ListFilter {
    fn default() -> Self {
        Self {
            product_types: Vec::new(),
            no_ack: false,
            max_hits: DEFAULT_MAX_HITS,
            status: Status::Production,
            corr_id: None,
            content_id: None,
            originator: None,
            end_recipient: None,
            since: None,
            sort: None,
            sort_order: SortOrder::Ascending,
            arrival_order: SortOrder::Ascending,
        }
    }
}

impl ListFilter {
    /// Parses delivery-service query parameters, reading `since` as UTC.
    pub fn from_query(query: &[(String, String)]) -> Result<Self, FilterError> {
        Self::from_query_in(query, &Utc)
    }

    /// Parses delivery-service query parameters, reading the zone-less `since`
    /// timestamp as wall-clock time in `zone` (SHS nodes write local time).
    ///
    /// Unknown parameters are ignored, as Axel does (its client also sends
    /// `metaname`, `metavalue` and `sequencetype`, which the server never read).
    /// An empty value counts as absent.
    pub fn from_query_in<Tz: TimeZone>(
        query: &[(String, String)],
        zone: &Tz,
    ) -> Result<Self, FilterError> {
        let mut f = Self::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut once = |param: &'static str| {
            if seen.contains(&param) {
                Err(FilterError::Repeated { param })
            } else {
                seen.push(param);
                Ok(())
            }
        };
        for (name, value) in query {
            let value = value.trim();
            let bad = |param: &'static str, expected: &'static str| FilterError::BadValue {
                param,
                value: value.to_owned(),
                expected,
            };
            match name.as_str() {
                // Several `producttype` parameters add up, like one comma list.
                "producttype" => f.product_types.extend(
                    value
                        .split(',')
                        .map(shs_value)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                ),
                "filter" => {
                    once("filter")?;
                    if value.eq_ignore_ascii_case("noack") {
                        f.no_ack = true;
                    } else if !value.is_empty() {
                        return Err(bad("filter", "noack"));
                    }
                }
                "maxhits" => {
                    once("maxhits")?;
                    if !value.is_empty() {
                        let n: i64 = value.parse().map_err(|_| bad("maxhits", "an integer"))?;
                        f.max_hits = usize::try_from(n)
                            .ok()
                            .filter(|&n| n > 0)
                            .unwrap_or(DEFAULT_MAX_HITS);
                    }
                }
                "status" => {
                    once("status")?;
                    f.status = if value.is_empty() || value.eq_ignore_ascii_case("production") {
                        Status::Production
                    } else if value.eq_ignore_ascii_case("test") {
                        Status::Test
                    } else {
                        return Err(bad("status", "test or production"));
                    };
                }
                "corrid" => {
                    once("corrid")?;
                    f.corr_id = non_empty(value);
                }
                "contentid" => {
                    once("contentid")?;
                    f.content_id = non_empty(value);
                }
                "originator" => {
                    once("originator")?;
                    f.originator = non_empty(shs_value(value));
                }
                "endrecipient" => {
                    once("endrecipient")?;
                    f.end_recipient = non_empty(shs_value(value));
                }
                "since" => {
                    once("since")?;
                    if !value.is_empty() {
                        let expected = "a timestamp yyyy-MM-ddTHH:mm:ss";
                        let naive = NaiveDateTime::parse_from_str(value, SHS_TIMESTAMP_FORMAT)
                            .map_err(|_| bad("since", expected))?;
                        let local = zone
                            .from_local_datetime(&naive)
                            .earliest()
                            .ok_or_else(|| bad("since", expected))?;
                        f.since = Some(local.with_timezone(&Utc));
                    }
                }
                "sortattribute" => {
                    once("sortattribute")?;
                    if !value.is_empty() {
                        f.sort = Some(parse_sort_attribute(value).ok_or_else(|| {
                            bad(
                                "sortattribute",
                                "originator, from, endrecipient, producttype, subject, \
                                 contentid, corrid, sequencetype, transfertype or meta-<name>",
                            )
                        })?);
                    }
                }
                "sortorder" => {
                    once("sortorder")?;
                    f.sort_order = parse_order(value, true)
                        .ok_or_else(|| bad("sortorder", "asc, ascending, desc or descending"))?;
                }
                "arrivalorder" => {
                    once("arrivalorder")?;
                    f.arrival_order = parse_order(value, false)
                        .ok_or_else(|| bad("arrivalorder", "ascending or descending"))?;
                }
                _ => {}
            }
        }
        Ok(f)
    }

    /// The criteria every listing applies whatever the parameters: the message is
    /// in this outbox, asynchronous, waiting (`Received`, processed) and not expired.
    pub fn is_waiting_in(meta: &MessageMeta, outbox: &Outbox, now: DateTime<Utc>) -> bool {
        meta.label.to == *outbox
            && meta.label.transfer_type == TransferType::Asynch
            && meta.state == MessageState::Received
            && !meta.processing
            && meta.expires_at > now
    }

    /// Whether a message passes this filter's own criteria.
    pub fn accepts(&self, meta: &MessageMeta) -> bool {
        let l = &meta.label;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        (self.product_types.is_empty()
            || self
                .product_types
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&l.product)))
            && !(self.no_ack && meta.acknowledged)
            && l.status == self.status
            && eq(&self.corr_id, Some(&l.corr_id))
            && eq(&self.content_id, Some(&l.content_id))
            && self
                .originator
                .as_deref()
                .is_none_or(|o| l.originator.as_deref() == Some(o) || l.from.as_deref() == Some(o))
            && eq(&self.end_recipient, l.end_recipient.as_deref())
            && self.since.is_none_or(|s| meta.state_timestamp >= s)
    }

    /// Applies every criterion (the always-applied ones and this filter's), then
    /// orders and caps the result.
    pub fn select(
        &self,
        outbox: &Outbox,
        now: DateTime<Utc>,
        candidates: impl IntoIterator<Item = MessageMeta>,
    ) -> Vec<MessageMeta> {
        let mut hits: Vec<MessageMeta> = candidates
            .into_iter()
            .filter(|m| Self::is_waiting_in(m, outbox, now) && self.accepts(m))
            .collect();
        hits.sort_by(|a, b| {
            let by_attribute = self.sort.as_ref().map_or(Ordering::Equal, |attr| {
                self.sort_order.apply(attr.key(a).cmp(&attr.key(b)))
            });
            by_attribute
                .then_with(|| self.arrival_order.apply(a.arrival.cmp(&b.arrival)))
                .then_with(|| a.label.tx_id.cmp(&b.label.tx_id))
        });
        hits.truncate(self.max_hits);
        hits
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

fn parse_sort_attribute(v: &str) -> Option<SortAttribute> {
    Some(match v {
        "originator" | "from" => SortAttribute::Originator,
        "endrecipient" => SortAttribute::EndRecipient,
        "producttype" => SortAttribute::ProductType,
        "subject" => SortAttribute::Subject,
        "contentid" => SortAttribute::ContentId,
        "corrid" | "-corrid" => SortAttribute::CorrId,
        "sequencetype" => SortAttribute::SequenceType,
        "transfertype" => SortAttribute::TransferType,
        _ => {
            let name = v.strip_prefix("meta-")?;
            if name.is_empty() {
                return None;
            }
            SortAttribute::Meta(name.to_owned())
        }
    })
}

/// `sortorder` also takes `asc`/`desc`; `arrivalorder` only the long forms.
fn parse_order(v: &str, short_forms: bool) -> Option<SortOrder> {
    let v = v.to_ascii_lowercase();
    match v.as_str() {
        "" | "ascending" => Some(SortOrder::Ascending),
        "descending" => Some(SortOrder::Descending),
        "asc" if short_forms => Some(SortOrder::Ascending),
        "desc" if short_forms => Some(SortOrder::Descending),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<ListFilter, FilterError> {
        ListFilter::from_query(&q(pairs))
    }

    #[test]
    fn no_parameters_give_the_axel_defaults() {
        let f = parse(&[]).unwrap();
        assert_eq!(f, ListFilter::default());
        assert_eq!(f.max_hits, 200);
        assert_eq!(f.status, Status::Production);
    }

    #[test]
    fn every_parameter_parses_in_its_axel_form() {
        let f = parse(&[
            ("producttype", "urn:X-shs:error,confirm"),
            ("filter", "noack"),
            ("maxhits", "7"),
            ("status", "TEST"),
            ("corrid", "c1"),
            ("contentid", "k1"),
            ("originator", "urn:x-shs:5555555555"),
            ("endrecipient", "orgno:1"),
            ("since", "2024-05-02T10:20:00"),
            ("sortattribute", "meta-kommun"),
            ("sortorder", "DESC"),
            ("arrivalorder", "Descending"),
            ("metaname", "ignored"),
        ])
        .unwrap();
        assert_eq!(f.product_types, ["error", "confirm"]);
        assert!(f.no_ack);
        assert_eq!(f.max_hits, 7);
        assert_eq!(f.status, Status::Test);
        assert_eq!(f.corr_id.as_deref(), Some("c1"));
        assert_eq!(f.content_id.as_deref(), Some("k1"));
        assert_eq!(f.originator.as_deref(), Some("5555555555"));
        assert_eq!(f.end_recipient.as_deref(), Some("orgno:1"));
        assert_eq!(f.since.unwrap().to_rfc3339(), "2024-05-02T10:20:00+00:00");
        assert_eq!(f.sort, Some(SortAttribute::Meta("kommun".into())));
        assert_eq!(f.sort_order, SortOrder::Descending);
        assert_eq!(f.arrival_order, SortOrder::Descending);
    }

    #[test]
    fn maxhits_zero_or_negative_means_200() {
        assert_eq!(parse(&[("maxhits", "0")]).unwrap().max_hits, 200);
        assert_eq!(parse(&[("maxhits", "-5")]).unwrap().max_hits, 200);
        assert_eq!(parse(&[("maxhits", "1000")]).unwrap().max_hits, 1000);
    }

    #[test]
    fn sort_attribute_spellings() {
        for (v, want) in [
            ("from", SortAttribute::Originator),
            ("originator", SortAttribute::Originator),
            ("-corrid", SortAttribute::CorrId),
            ("corrid", SortAttribute::CorrId),
            ("endrecipient", SortAttribute::EndRecipient),
            ("producttype", SortAttribute::ProductType),
            ("subject", SortAttribute::Subject),
            ("contentid", SortAttribute::ContentId),
            ("sequencetype", SortAttribute::SequenceType),
            ("transfertype", SortAttribute::TransferType),
        ] {
            assert_eq!(
                parse(&[("sortattribute", v)]).unwrap().sort,
                Some(want),
                "{v}"
            );
        }
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (param, value) in [
            ("maxhits", "many"),
            ("status", "prod"),
            ("since", "2024-05-02"),
            ("since", "2024-05-02 10:20:00"),
            ("since", "2024-13-02T10:20:00"),
            ("sortattribute", "size"),
            ("sortattribute", "meta-"),
            ("sortorder", "up"),
            ("arrivalorder", "asc"),
            ("arrivalorder", "sideways"),
            ("filter", "all"),
        ] {
            let err = parse(&[(param, value)]).unwrap_err();
            assert_eq!(err.param(), param, "{param}={value}");
            assert!(err.to_string().contains(param), "{err}");
        }
    }

    #[test]
    fn a_single_valued_parameter_given_twice_is_refused() {
        let err = parse(&[("status", "test"), ("status", "production")]).unwrap_err();
        assert_eq!(err, FilterError::Repeated { param: "status" });
        let f = parse(&[("producttype", "a"), ("producttype", "b,c")]).unwrap();
        assert_eq!(f.product_types, ["a", "b", "c"]);
    }

    #[test]
    fn since_is_read_in_the_given_zone() {
        let cet = chrono::FixedOffset::east_opt(3600).unwrap();
        let f = ListFilter::from_query_in(&q(&[("since", "2024-01-02T10:00:00")]), &cet).unwrap();
        assert_eq!(f.since.unwrap().to_rfc3339(), "2024-01-02T09:00:00+00:00");
    }
}
