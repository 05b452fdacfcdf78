-- relay-store schema, version 3: ELT mandates and accepted ELT reports, shared by
-- every node (issue 25). See relay/store/src/pg/state.rs.

-- ELT mandates decided through the admin API (or imported once from an old
-- mandates file): the vendor may (granted) or may not submit reports for the
-- assistance company, over what the configuration says.
CREATE TABLE elt_mandates (
    vendor     text NOT NULL,
    anordnare  text NOT NULL,
    granted    boolean NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, anordnare)
);

-- Accepted ELT reports, to answer a repeat through any node with the original
-- receipt (the receipt document: ids, times, a digest; nothing personal).
-- The oldest beyond [elt] remembered_reports are forgotten by housekeeping.
CREATE TABLE elt_reports (
    report_id    text PRIMARY KEY,
    sha256       text NOT NULL,
    receipt      text NOT NULL,
    accepted_at  timestamptz NOT NULL
);
CREATE INDEX elt_reports_accepted ON elt_reports (accepted_at);
