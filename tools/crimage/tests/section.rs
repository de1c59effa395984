//! Documentation/cr.rst lists the parts of a task's section; `records::SECTION` is that layout
//! for the module and the tools. They must say the same.

use crimage::records::{PartSpec, Shared, When, SECTION};

const DOC: &str = include_str!("../../../Documentation/cr.rst");

/// How cr.rst writes one part.
fn line(p: &PartSpec) -> String {
    let records = if p.more.is_empty() {
        p.first.name().to_string()
    } else {
        let more: Vec<&str> = p.more.iter().map(|k| k.name()).collect();
        if p.may_be_empty {
            format!("any number of {}", more.join(", "))
        } else {
            format!("{}, then any number of {}", p.first.name(), more.join(", "))
        }
    };
    let when = match p.when {
        When::Always => "always".to_string(),
        When::Leader => "in a process's first thread".to_string(),
        When::Defines(s) => format!(
            "in the first task to use its {}",
            match s {
                Shared::Mm => "address space",
                Shared::Files => "descriptor table",
                Shared::Fs => "root and cwd",
                Shared::Sighand => "signal handlers",
            }
        ),
    };
    format!("#. ``{}``: {records}; {when}.", p.name)
}

#[test]
fn the_documented_section_is_the_table() {
    let documented: Vec<&str> = DOC
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("#. ``"))
        .collect();
    let table: Vec<String> = SECTION.iter().map(line).collect();
    assert_eq!(
        documented,
        table,
        "Documentation/cr.rst's section list differs from records::SECTION; it should read:\n{}",
        table.join("\n")
    );
}
