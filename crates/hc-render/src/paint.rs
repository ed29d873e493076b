//! Colour, decided by the caller: a [`Pen`] paints only when its [`Style`]
//! says so, whatever the terminal or the environment (those are the
//! binary's business: `--color`, NO_COLOR, CLICOLOR_FORCE, TERM=dumb, a
//! pipe). No global state: two renders with two styles never interfere.
//!
//! Colours are `colored`'s, and the escapes are laid out as `colored`
//! writes them (styles, then the foreground colour; nested paint keeps the
//! outer style after an inner reset), so coloured output reads the same.

use colored::Color;

/// How a report is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Paint with ANSI colours.
    pub color: bool,
    /// Fold long runs of plain data into one line (timeline).
    pub fold: bool,
    /// Columns available: a segment's cause moves under its line beyond this.
    pub width: usize,
}

impl Default for Style {
    /// Plain, folded, 140 columns.
    fn default() -> Style {
        Style {
            color: false,
            fold: true,
            width: 140,
        }
    }
}

impl Style {
    pub fn pen(&self) -> Pen {
        Pen { on: self.color }
    }
}

/// What to paint a piece of text with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ink {
    fg: Option<Color>,
    bold: bool,
    dimmed: bool,
    italic: bool,
}

impl Ink {
    pub const PLAIN: Ink = Ink {
        fg: None,
        bold: false,
        dimmed: false,
        italic: false,
    };
    pub const RED: Ink = Ink::fg(Color::Red);
    pub const GREEN: Ink = Ink::fg(Color::Green);
    pub const YELLOW: Ink = Ink::fg(Color::Yellow);
    pub const BLUE: Ink = Ink::fg(Color::Blue);
    pub const CYAN: Ink = Ink::fg(Color::Cyan);
    pub const MAGENTA: Ink = Ink::fg(Color::Magenta);
    pub const BOLD: Ink = Ink::PLAIN.bold();
    pub const DIM: Ink = Ink::PLAIN.dimmed();
    pub const ITALIC: Ink = Ink::PLAIN.italic();

    const fn fg(c: Color) -> Ink {
        Ink {
            fg: Some(c),
            ..Ink::PLAIN
        }
    }
    pub const fn bold(self) -> Ink {
        Ink { bold: true, ..self }
    }
    pub const fn dimmed(self) -> Ink {
        Ink {
            dimmed: true,
            ..self
        }
    }
    pub const fn italic(self) -> Ink {
        Ink {
            italic: true,
            ..self
        }
    }

    fn is_plain(self) -> bool {
        self == Ink::PLAIN
    }

    /// The escape that starts this ink: `ESC[1;31m`.
    fn start(self) -> String {
        let mut parts: Vec<String> = Vec::new();
        // colored's order: bold, dimmed, (underline, reversed,) italic.
        if self.bold {
            parts.push("1".into());
        }
        if self.dimmed {
            parts.push("2".into());
        }
        if self.italic {
            parts.push("3".into());
        }
        if let Some(c) = self.fg {
            parts.push(c.to_fg_str().into_owned());
        }
        format!("\x1b[{}m", parts.join(";"))
    }
}

/// Paints text, or not, as the style decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pen {
    pub on: bool,
}

const RESET: &str = "\x1b[0m";

impl Pen {
    /// `text` in `ink` (text that is already painted keeps its colours).
    pub fn ink(self, text: impl AsRef<str>, ink: Ink) -> String {
        let text = text.as_ref();
        if !self.on || ink.is_plain() {
            return text.to_string();
        }
        let start = ink.start();
        // An inner reset would end the outer ink too early: start it again.
        let inner = text.replace(RESET, &format!("{RESET}{start}"));
        format!("{start}{inner}{RESET}")
    }
}

/// Printed length of a string without its colour escapes.
pub fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_esc = false;
    for ch in s.chars() {
        if in_esc {
            if ch == 'm' {
                in_esc = false;
            }
        } else if ch == '\u{1b}' {
            in_esc = true;
        } else {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use colored::Colorize;

    #[test]
    fn off_is_plain_and_on_paints_as_colored_does() {
        let off = Pen { on: false };
        assert_eq!(off.ink("FIN", Ink::YELLOW.bold()), "FIN");
        let on = Pen { on: true };
        // The reference: colored itself, forced on (this test alone touches
        // colored's global switch; nothing in this crate reads it).
        colored::control::set_override(true);
        assert_eq!(
            on.ink("FIN", Ink::YELLOW.bold()),
            "FIN".yellow().bold().to_string()
        );
        assert_eq!(on.ink("x", Ink::DIM), "x".dimmed().to_string());
        assert_eq!(on.ink("x", Ink::ITALIC), "x".italic().to_string());
        assert_eq!(on.ink("c", Ink::CYAN), "c".cyan().to_string());
        let nested = on.ink(format!("a {} b", on.ink("k", Ink::BOLD)), Ink::ITALIC);
        let reference = format!("a {} b", "k".bold()).italic().to_string();
        assert_eq!(nested, reference);
        colored::control::unset_override();
        assert_eq!(visible_len(&nested), 5);
    }
}
