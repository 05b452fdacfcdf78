//! Contract evolution: the provider contract as it is now, compiled with
//! protox, against the released v1 descriptor set checked in as
//! `proto/v1.fds.bin` (a binary `FileDescriptorSet`). Breaking changes fail,
//! the way `buf breaking` does: a removed or renumbered field, a changed field
//! type or cardinality, a removed enum value, a removed or renamed service or
//! method, a changed method type, a changed package. Additions are allowed.
//!
//! The snapshot is of a release and is never regenerated for a change within
//! v1; `SHS_WRITE_V1_SNAPSHOT=1 cargo test -p shs-proto --test evolution --
//! the_contract_has` wrote it once (without source comments).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeMap;

use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FileDescriptorSet, ServiceDescriptorProto,
};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/v1.fds.bin");

fn current() -> FileDescriptorSet {
    protox::compile(
        ["shs_relay/provider/v1/provider.proto"],
        [env!("CARGO_MANIFEST_DIR")],
    )
    .expect("the contract compiles")
}

fn released() -> FileDescriptorSet {
    let bytes = std::fs::read(SNAPSHOT).expect("proto/v1.fds.bin");
    FileDescriptorSet::decode(bytes.as_slice()).expect("a FileDescriptorSet")
}

fn services(set: &FileDescriptorSet) -> BTreeMap<String, &ServiceDescriptorProto> {
    set.file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| (format!("{}.{}", f.package(), s.name()), s))
        })
        .collect()
}

fn messages(set: &FileDescriptorSet) -> BTreeMap<String, &DescriptorProto> {
    fn walk<'a>(
        prefix: &str,
        m: &'a DescriptorProto,
        out: &mut BTreeMap<String, &'a DescriptorProto>,
    ) {
        let name = format!("{prefix}.{}", m.name());
        for n in &m.nested_type {
            walk(&name, n, out);
        }
        out.insert(name, m);
    }
    let mut out = BTreeMap::new();
    for f in &set.file {
        for m in &f.message_type {
            walk(f.package(), m, &mut out);
        }
    }
    out
}

fn enums(set: &FileDescriptorSet) -> BTreeMap<String, &EnumDescriptorProto> {
    let mut out = BTreeMap::new();
    for f in &set.file {
        for e in &f.enum_type {
            out.insert(format!("{}.{}", f.package(), e.name()), e);
        }
    }
    for (name, m) in messages(set) {
        for e in &m.enum_type {
            out.insert(format!("{name}.{}", e.name()), e);
        }
    }
    out
}

/// Every breaking change from `old` to `new`, described.
pub fn breaking_changes(old: &FileDescriptorSet, new: &FileDescriptorSet) -> Vec<String> {
    let mut out = Vec::new();
    let new_packages: Vec<&str> = new.file.iter().map(|f| f.package()).collect();
    for f in &old.file {
        if !new_packages.contains(&f.package()) {
            out.push(format!("package {} removed or renamed", f.package()));
        }
    }
    let new_messages = messages(new);
    for (name, m) in messages(old) {
        let Some(n) = new_messages.get(&name) else {
            out.push(format!("message {name} removed or renamed"));
            continue;
        };
        for field in &m.field {
            let same_number = n.field.iter().find(|f| f.number() == field.number());
            let same_name = n.field.iter().find(|f| f.name() == field.name());
            match (same_number, same_name) {
                (None, Some(g)) => out.push(format!(
                    "field {name}.{} renumbered from {} to {}",
                    field.name(),
                    field.number(),
                    g.number()
                )),
                (None, None) => {
                    let reserved = n
                        .reserved_range
                        .iter()
                        .any(|r| (r.start()..r.end()).contains(&field.number()));
                    if !reserved {
                        out.push(format!(
                            "field {name}.{} ({}) removed without reserving its number",
                            field.name(),
                            field.number()
                        ));
                    }
                }
                (Some(g), _) => {
                    if g.name() != field.name() {
                        out.push(format!(
                            "field {name} number {} renamed from {} to {}",
                            field.number(),
                            field.name(),
                            g.name()
                        ));
                    }
                    if g.r#type() != field.r#type() || g.type_name() != field.type_name() {
                        out.push(format!("field {name}.{} changed type", field.name()));
                    }
                    if g.label() != field.label() {
                        out.push(format!("field {name}.{} changed cardinality", field.name()));
                    }
                    if g.oneof_index != field.oneof_index {
                        out.push(format!(
                            "field {name}.{} moved in or out of a oneof",
                            field.name()
                        ));
                    }
                }
            }
        }
    }
    let new_enums = enums(new);
    for (name, e) in enums(old) {
        let Some(n) = new_enums.get(&name) else {
            out.push(format!("enum {name} removed or renamed"));
            continue;
        };
        for v in &e.value {
            if !n.value.iter().any(|w| w.number() == v.number()) {
                out.push(format!(
                    "enum value {name}.{} ({}) removed",
                    v.name(),
                    v.number()
                ));
            }
        }
    }
    let new_services = services(new);
    for (name, s) in services(old) {
        let Some(n) = new_services.get(&name) else {
            out.push(format!("service {name} removed or renamed"));
            continue;
        };
        for m in &s.method {
            match n.method.iter().find(|x| x.name() == m.name()) {
                None => out.push(format!("method {name}.{} removed or renamed", m.name())),
                Some(x) => {
                    if x.input_type() != m.input_type() || x.output_type() != m.output_type() {
                        out.push(format!(
                            "method {name}.{} changed its request or reply type",
                            m.name()
                        ));
                    }
                    if x.client_streaming() != m.client_streaming()
                        || x.server_streaming() != m.server_streaming()
                    {
                        out.push(format!("method {name}.{} changed streaming", m.name()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_contract_has_no_breaking_change_since_the_v1_release() {
    if std::env::var_os("SHS_WRITE_V1_SNAPSHOT").is_some() {
        let mut set = current();
        for f in &mut set.file {
            f.source_code_info = None;
        }
        std::fs::write(SNAPSHOT, set.encode_to_vec()).unwrap();
    }
    let changes = breaking_changes(&released(), &current());
    assert!(
        changes.is_empty(),
        "breaking changes to shs_relay.provider.v1 (make a v2 package instead):\n{}",
        changes.join("\n")
    );
}

fn message<'a>(set: &'a mut FileDescriptorSet, name: &str) -> &'a mut DescriptorProto {
    set.file[0]
        .message_type
        .iter_mut()
        .find(|m| m.name() == name)
        .unwrap()
}

fn field_number<'a>(set: &'a mut FileDescriptorSet, msg: &str, field: &str) -> &'a mut Option<i32> {
    &mut message(set, msg)
        .field
        .iter_mut()
        .find(|f| f.name() == field)
        .unwrap()
        .number
}

fn detected(change: impl FnOnce(&mut FileDescriptorSet), expect: &str) {
    let old = released();
    let mut new = old.clone();
    change(&mut new);
    let found = breaking_changes(&old, &new);
    assert!(
        found.iter().any(|c| c.contains(expect)),
        "expected a change mentioning {expect:?}, found {found:?}"
    );
}

#[test]
fn a_removed_field_is_breaking() {
    detected(
        |s| {
            message(s, "QueryRequest")
                .field
                .retain(|f| f.name() != "person_id")
        },
        "QueryRequest.person_id (4) removed",
    );
}

#[test]
fn a_removed_field_whose_number_is_reserved_is_not() {
    let old = released();
    let mut new = old.clone();
    let m = message(&mut new, "QueryRequest");
    m.field.retain(|f| f.name() != "correlation_id");
    m.reserved_range
        .push(prost_types::descriptor_proto::ReservedRange {
            start: Some(11),
            end: Some(12),
        });
    assert_eq!(breaking_changes(&old, &new), Vec::<String>::new());
}

#[test]
fn a_renumbered_field_is_breaking() {
    detected(
        |s| *field_number(s, "QueryRequest", "person_id") = Some(40),
        "renumbered from 4 to 40",
    );
}

#[test]
fn a_changed_field_type_is_breaking() {
    detected(
        |s| {
            let f = message(s, "QueryRequest")
                .field
                .iter_mut()
                .find(|f| f.name() == "person_id")
                .unwrap();
            f.set_type(prost_types::field_descriptor_proto::Type::Bytes);
        },
        "QueryRequest.person_id changed type",
    );
}

#[test]
fn a_removed_or_renamed_service_or_method_is_breaking() {
    detected(
        |s| s.file[0].service.clear(),
        "service shs_relay.provider.v1.Provider removed",
    );
    detected(
        |s| s.file[0].service[0].method[1].name = Some("Ask".into()),
        "method shs_relay.provider.v1.Provider.Query removed or renamed",
    );
}

#[test]
fn a_changed_package_is_breaking() {
    detected(
        |s| s.file[0].package = Some("shs_relay.provider.v2".into()),
        "package shs_relay.provider.v1 removed or renamed",
    );
}

#[test]
fn adding_a_field_is_allowed() {
    let old = released();
    let mut new = old.clone();
    let m = message(&mut new, "QueryRequest");
    let mut added = m.field[0].clone();
    added.name = Some("new_field".into());
    added.json_name = Some("newField".into());
    added.number = Some(99);
    m.field.push(added);
    assert_eq!(breaking_changes(&old, &new), Vec::<String>::new());
}
