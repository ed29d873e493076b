//! `hc-trace explain NAME`: what the standards say about a built-in scenario.
//!
//! Kept apart from anything observed: the text is written ahead of time, one
//! Markdown file per scenario beside its `.scenario` file (so a teacher edits
//! prose, not Rust), and printed under a header that says it is theory. What
//! the kernel actually does is for `hc-trace scenario NAME` to show: a student
//! should compare the two, not read one as the other.

use crate::scenario::{self, UnknownScenario};

const EXPLAINED: &[(&str, &str)] = &[
    (
        "shut-wr",
        include_str!("../../../../scenarios/shut-wr.explain.md"),
    ),
    (
        "shut-rd",
        include_str!("../../../../scenarios/shut-rd.explain.md"),
    ),
    (
        "shut-rdwr",
        include_str!("../../../../scenarios/shut-rdwr.explain.md"),
    ),
    (
        "close-early",
        include_str!("../../../../scenarios/close-early.explain.md"),
    ),
    (
        "close-unread",
        include_str!("../../../../scenarios/close-unread.explain.md"),
    ),
    (
        "linger0",
        include_str!("../../../../scenarios/linger0.explain.md"),
    ),
    (
        "write-after-close",
        include_str!("../../../../scenarios/write-after-close.explain.md"),
    ),
    (
        "dup-close",
        include_str!("../../../../scenarios/dup-close.explain.md"),
    ),
    (
        "no-shutdown",
        include_str!("../../../../scenarios/no-shutdown.explain.md"),
    ),
    (
        "cork-fin",
        include_str!("../../../../scenarios/cork-fin.explain.md"),
    ),
    (
        "refused",
        include_str!("../../../../scenarios/refused.explain.md"),
    ),
    (
        "listen-close",
        include_str!("../../../../scenarios/listen-close.explain.md"),
    ),
    (
        "half-close-bulk",
        include_str!("../../../../scenarios/half-close-bulk.explain.md"),
    ),
    (
        "simultaneous-close",
        include_str!("../../../../scenarios/simultaneous-close.explain.md"),
    ),
    (
        "fin-lost",
        include_str!("../../../../scenarios/fin-lost.explain.md"),
    ),
];

/// The explanation of a built-in scenario, as stored.
pub fn text(name: &str) -> Option<&'static str> {
    EXPLAINED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// What `hc-trace explain NAME` prints: the theory header, then the text.
pub fn explain(name: &str) -> Result<String, UnknownScenario> {
    let s = scenario::builtin(name)?;
    let body = text(name).ok_or_else(|| UnknownScenario {
        name: name.to_string(),
        suggestion: None,
    })?;
    Ok(format!(
        "THEORY — what the standards say about `{}`; this is not an observation.\n\
         Run `sudo hc-trace scenario {name}` to see what your kernel does.\n\
         Each RFC is at https://www.rfc-editor.org/rfc/rfcNNNN.html (sections below).\n\n{}\n",
        s.name,
        body.trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "RFC 9293 section 3.6" and the like: an RFC number and a section.
    fn cites_a_section(text: &str) -> bool {
        let words: Vec<&str> = text.split_whitespace().collect();
        words.windows(4).any(|w| {
            w[0] == "RFC"
                && w[1].chars().all(|c| c.is_ascii_digit())
                && w[2].to_lowercase().starts_with("section")
                && w[3].chars().next().is_some_and(|c| c.is_ascii_digit())
        })
    }

    #[test]
    fn every_builtin_scenario_has_an_explanation_citing_an_rfc_section() {
        for name in scenario::names() {
            let t = text(name).unwrap_or_else(|| panic!("{name} has no explanation"));
            assert!(cites_a_section(t), "{name} cites no RFC section");
            let out = explain(name).expect("a built-in");
            assert!(out.starts_with("THEORY"));
        }
        assert_eq!(
            EXPLAINED.len(),
            scenario::names().len(),
            "no orphan explanation"
        );
    }

    #[test]
    fn the_citation_check_can_fail() {
        assert!(cites_a_section("see RFC 9293 section 3.6 for this"));
        assert!(!cites_a_section("see RFC 9293 for this"));
        assert!(explain("shut-wrr").is_err());
    }

    #[test]
    fn explanations_fit_a_terminal() {
        for (name, t) in EXPLAINED {
            for l in t.lines() {
                assert!(l.chars().count() <= 80, "{name}: {l}");
            }
        }
    }
}
