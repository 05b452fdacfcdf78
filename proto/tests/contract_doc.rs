//! `providers/CONTRACT.md`: the provider contract as documentation for someone
//! who has never seen Rust, generated from the `.proto`'s own comments (the
//! descriptor set protox compiles, with its source info): every service, RPC,
//! message, field and enum value with its comment, and the versioning promise
//! (the file's opening comment).
//!
//! The test fails when CONTRACT.md does not match the `.proto`; regenerate it
//! with the command in [`REGENERATE`]. A second test fails when an element of
//! the contract has no comment.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeMap;
use std::fmt::Write;

use prost_types::source_code_info::Location;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    field_descriptor_proto::{Label, Type},
};

const PROTO: &str = "shs_relay/provider/v1/provider.proto";
const CONTRACT_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../providers/CONTRACT.md");
const REGENERATE: &str = "SHS_WRITE_CONTRACT_MD=1 cargo test -p shs-proto --test contract_doc";

// Field numbers in `FileDescriptorProto` / `DescriptorProto` etc. that make up
// the source-info paths (descriptor.proto).
const FILE_SYNTAX: i32 = 12;
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

fn contract() -> FileDescriptorProto {
    let set =
        protox::compile([PROTO], [env!("CARGO_MANIFEST_DIR")]).expect("the contract compiles");
    set.file
        .into_iter()
        .find(|f| f.name() == PROTO)
        .expect("the contract's file")
}

/// Comments by source-info path.
struct Comments(BTreeMap<Vec<i32>, Location>);

impl Comments {
    fn of(file: &FileDescriptorProto) -> Self {
        let locations = file
            .source_code_info
            .as_ref()
            .map(|s| s.location.clone())
            .unwrap_or_default();
        Self(locations.into_iter().map(|l| (l.path.clone(), l)).collect())
    }

    /// The leading and trailing comment of the element at `path`, as lines.
    fn lines(&self, path: &[i32]) -> Vec<String> {
        let Some(l) = self.0.get(path) else {
            return Vec::new();
        };
        let mut text = l.leading_comments().to_owned();
        if !l.trailing_comments().trim().is_empty() {
            text.push('\n');
            text.push_str(l.trailing_comments());
        }
        let lines: Vec<String> = text
            .lines()
            .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned())
            .collect();
        let start = lines
            .iter()
            .position(|l| !l.is_empty())
            .unwrap_or(lines.len());
        let end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(start, |e| e + 1);
        lines[start..end].to_vec()
    }

    /// The comment as one table cell.
    fn cell(&self, path: &[i32]) -> String {
        self.lines(path)
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|")
    }

    /// The comment as Markdown paragraphs (lines kept; indented lines as code).
    fn block(&self, path: &[i32]) -> String {
        let mut out = String::new();
        for line in self.lines(path) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

fn short(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

fn anchor(name: &str) -> String {
    format!("[`{name}`](#{})", name.to_ascii_lowercase())
}

fn scalar(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        Type::Group | Type::Message | Type::Enum => "",
    }
}

/// A field's type as the .proto spells it, with links to messages and enums.
fn field_type(field: &FieldDescriptorProto, message: &DescriptorProto) -> String {
    let base = |f: &FieldDescriptorProto| match f.r#type() {
        Type::Message | Type::Enum => anchor(short(f.type_name())),
        t => format!("`{}`", scalar(t)),
    };
    if field.r#type() == Type::Message
        && let Some(entry) = message.nested_type.iter().find(|n| {
            n.options.as_ref().is_some_and(|o| o.map_entry())
                && n.name() == short(field.type_name())
        })
        && let [k, v] = entry.field.as_slice()
    {
        return format!("map<{}, {}>", base(k), base(v));
    }
    if field.label() == Label::Repeated {
        format!("repeated {}", base(field))
    } else {
        base(field)
    }
}

fn render_enum(out: &mut String, e: &EnumDescriptorProto, path: &[i32], c: &Comments) {
    let _ = writeln!(out, "### `{}`\n", e.name());
    let _ = writeln!(out, "{}", c.block(path));
    let _ = writeln!(out, "| Value | Number | Meaning |\n|---|---|---|");
    for (i, v) in e.value.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([ENUM_VALUE, i as i32]);
        let _ = writeln!(out, "| `{}` | {} | {} |", v.name(), v.number(), c.cell(&p));
    }
    out.push('\n');
}

fn render_message(out: &mut String, m: &DescriptorProto, path: &[i32], c: &Comments) {
    if m.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let _ = writeln!(out, "### `{}`\n", m.name());
    let _ = writeln!(out, "{}", c.block(path));
    if m.field.is_empty() {
        let _ = writeln!(out, "No fields.\n");
    } else {
        let _ = writeln!(out, "| # | Field | Type | Meaning |\n|---|---|---|---|");
        for (i, f) in m.field.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([MESSAGE_FIELD, i as i32]);
            let oneof = f
                .oneof_index
                .and_then(|o| m.oneof_decl.get(o as usize))
                .map(|o| format!(" (one of `{}`)", o.name()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | `{}` | {}{oneof} | {} |",
                f.number(),
                f.name(),
                field_type(f, m),
                c.cell(&p)
            );
        }
        out.push('\n');
    }
    for (i, e) in m.enum_type.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([MESSAGE_ENUM, i as i32]);
        render_enum(out, e, &p, c);
    }
    for (i, n) in m.nested_type.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([MESSAGE_NESTED, i as i32]);
        render_message(out, n, &p, c);
    }
}

/// CONTRACT.md for `file`.
fn render(file: &FileDescriptorProto) -> String {
    let c = Comments::of(file);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# The provider contract: `{}`\n\n<!-- Generated from proto/{PROTO} by `{REGENERATE}`. Do not edit: change the comments in the .proto and regenerate. -->\n",
        file.package()
    );
    let _ = writeln!(
        out,
        "What a provider adapter serves and the relay calls, over gRPC with mutual TLS, in any language: generate the stubs from [`proto/{PROTO}`](../proto/{PROTO}) with the gRPC tools of your language, implement the service below and check it with `shs-conformance` ([README.md](README.md)). The text below is the `.proto`'s own comments.\n"
    );
    let _ = writeln!(out, "## Overview and the versioning promise\n");
    let _ = writeln!(out, "```text\n{}```\n", c.block(&[FILE_SYNTAX]));
    for (i, s) in file.service.iter().enumerate() {
        let path = [FILE_SERVICE, i as i32];
        let _ = writeln!(out, "## Service `{}.{}`\n", file.package(), s.name());
        let _ = writeln!(out, "{}", c.block(&path));
        let _ = writeln!(
            out,
            "| RPC | Request | Reply | What it does |\n|---|---|---|---|"
        );
        for (j, m) in s.method.iter().enumerate() {
            let _ = writeln!(
                out,
                "| `{}` | {}{} | {}{} | {} |",
                m.name(),
                if m.client_streaming() { "stream " } else { "" },
                anchor(short(m.input_type())),
                if m.server_streaming() { "stream " } else { "" },
                anchor(short(m.output_type())),
                c.cell(&[FILE_SERVICE, i as i32, SERVICE_METHOD, j as i32])
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Messages\n");
    for (i, m) in file.message_type.iter().enumerate() {
        render_message(&mut out, m, &[FILE_MESSAGE, i as i32], &c);
    }
    let _ = writeln!(out, "## Enums\n");
    for (i, e) in file.enum_type.iter().enumerate() {
        render_enum(&mut out, e, &[FILE_ENUM, i as i32], &c);
    }
    format!("{}\n", out.trim_end())
}

#[test]
fn contract_md_matches_the_proto() {
    let rendered = render(&contract());
    if std::env::var_os("SHS_WRITE_CONTRACT_MD").is_some() {
        std::fs::write(CONTRACT_MD, &rendered).expect("write providers/CONTRACT.md");
        return;
    }
    let on_disk = std::fs::read_to_string(CONTRACT_MD).unwrap_or_default();
    assert!(
        on_disk == rendered,
        "providers/CONTRACT.md does not match proto/{PROTO}: regenerate it with `{REGENERATE}`"
    );
}

/// Every service, RPC, message, field, enum and enum value says what it is.
#[test]
fn every_element_of_the_contract_has_a_comment() {
    let file = contract();
    let c = Comments::of(&file);
    let mut missing = Vec::new();
    let mut need = |path: Vec<i32>, what: String| {
        if c.cell(&path).is_empty() {
            missing.push(what);
        }
    };
    fn message_paths(
        m: &DescriptorProto,
        path: Vec<i32>,
        name: String,
        out: &mut Vec<(Vec<i32>, String)>,
    ) {
        if m.options.as_ref().is_some_and(|o| o.map_entry()) {
            return;
        }
        out.push((path.clone(), format!("message {name}")));
        for (i, f) in m.field.iter().enumerate() {
            let mut p = path.clone();
            p.extend([MESSAGE_FIELD, i as i32]);
            out.push((p, format!("field {name}.{}", f.name())));
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([MESSAGE_NESTED, i as i32]);
            message_paths(n, p, format!("{name}.{}", n.name()), out);
        }
    }
    let mut paths = Vec::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message_paths(
            m,
            vec![FILE_MESSAGE, i as i32],
            m.name().to_owned(),
            &mut paths,
        );
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        paths.push((vec![FILE_ENUM, i as i32], format!("enum {}", e.name())));
        for (j, v) in e.value.iter().enumerate() {
            paths.push((
                vec![FILE_ENUM, i as i32, ENUM_VALUE, j as i32],
                format!("enum value {}", v.name()),
            ));
        }
    }
    for (i, s) in file.service.iter().enumerate() {
        paths.push((
            vec![FILE_SERVICE, i as i32],
            format!("service {}", s.name()),
        ));
        for (j, m) in s.method.iter().enumerate() {
            paths.push((
                vec![FILE_SERVICE, i as i32, SERVICE_METHOD, j as i32],
                format!("rpc {}.{}", s.name(), m.name()),
            ));
        }
    }
    for (path, what) in paths {
        need(path, what);
    }
    assert!(
        missing.is_empty(),
        "these elements of proto/{PROTO} have no comment (say what it means, its unit and who sets it): {missing:#?}"
    );
}
