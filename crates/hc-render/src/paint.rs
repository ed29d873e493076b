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
    /// Fold every line of the timeline to `width` (the width of the
    /// terminal it is printed on): what does not fit goes under the line.
    pub fit: bool,
}

impl Default for Style {
    /// Plain, folded, 140 columns, lines as long as they are.
    fn default() -> Style {
        Style {
            color: false,
            fold: true,
            width: 140,
            fit: false,
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
    /// [`Pen::ink`] onto the end of `out`: nothing is allocated without colour.
    pub fn ink_into(self, out: &mut String, text: &str, ink: Ink) {
        if !self.on || ink.is_plain() {
            out.push_str(text);
        } else {
            out.push_str(&self.ink(text, ink));
        }
    }

    /// `text` in `ink` (text that is already painted keeps its colours).
    pub fn ink<S: AsRef<str> + Into<String>>(self, text: S, ink: Ink) -> String {
        if !self.on || ink.is_plain() {
            // A String passed in is handed back as it is (no copy).
            return text.into();
        }
        let text = text.as_ref();
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

/// One piece of a line: a word or a run of spaces, with any colour escapes
/// inside it, and how many columns it takes.
struct Piece {
    text: String,
    cols: usize,
    space: bool,
}

fn pieces(line: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut in_esc = false;
    for ch in line.chars() {
        if in_esc || ch == '\u{1b}' {
            in_esc = ch != 'm';
            // An escape joins the piece it is in (or starts the next word).
            match out.last_mut() {
                Some(p) if !p.space => p.text.push(ch),
                _ => out.push(Piece {
                    text: ch.to_string(),
                    cols: 0,
                    space: false,
                }),
            }
            continue;
        }
        let space = ch == ' ';
        match out.last_mut() {
            Some(p) if p.space == space && (space || p.cols > 0 || !p.text.is_empty()) => {
                p.text.push(ch);
                p.cols += 1;
            }
            _ => out.push(Piece {
                text: ch.to_string(),
                cols: 1,
                space,
            }),
        }
    }
    out
}

/// The colour escapes in force after `text`, given those in force before.
fn track(active: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        let Some(end) = rest[at..].find('m') else {
            break;
        };
        let esc = &rest[at..at + end + 1];
        if esc == RESET {
            active.clear();
        } else {
            active.push_str(esc);
        }
        rest = &rest[at + end + 1..];
    }
}

/// A line as lines of at most `width` columns, never cutting a word (unless
/// a word alone is wider than a line). It breaks first between its columns
/// (runs of two or more spaces) and before a ` · `, then between words;
/// each line after the first starts with `indent` spaces. Colours go on
/// across the break.
pub fn fit_line(line: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 8);
    if visible_len(line) <= width {
        return vec![line.to_string()];
    }
    // Fields: the spaces before each, and its words with the single spaces between.
    struct Field {
        sep: String,
        sep_cols: usize,
        words: Vec<Piece>,
    }
    let ps = pieces(line);
    let mut fields: Vec<Field> = Vec::new();
    let mut current = Field {
        sep: String::new(),
        sep_cols: 0,
        words: Vec::new(),
    };
    for (i, p) in ps.iter().enumerate() {
        let before_dot = ps
            .get(i + 1)
            .is_some_and(|n| !n.space && n.cols == 1 && n.text.ends_with('·'));
        if p.space && (p.cols >= 2 || before_dot || current.words.is_empty()) {
            if current.words.is_empty() {
                current.sep.push_str(&p.text);
                current.sep_cols += p.cols;
            } else {
                fields.push(std::mem::replace(
                    &mut current,
                    Field {
                        sep: p.text.clone(),
                        sep_cols: p.cols,
                        words: Vec::new(),
                    },
                ));
            }
            continue;
        }
        current.words.push(Piece {
            text: p.text.clone(),
            cols: p.cols,
            space: p.space,
        });
    }
    if !current.words.is_empty() {
        fields.push(current);
    }

    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cols = 0usize;
    let mut active = String::new();
    let new_line =
        |lines: &mut Vec<String>, cur: &mut String, cols: &mut usize, active: &str, at: usize| {
            if !active.is_empty() {
                cur.push_str(RESET);
            }
            lines.push(std::mem::take(cur).trim_end().to_string());
            cur.push_str(&" ".repeat(at));
            cur.push_str(active);
            *cols = at;
        };
    // The words of a field that needs more than a line go on two columns in.
    let hang = (indent + 2).min(width / 2);
    for (n, f) in fields.iter().enumerate() {
        let field_cols: usize = f.words.iter().map(|w| w.cols).sum();
        let first_word = f
            .words
            .iter()
            .find(|w| !w.space && w.cols > 0)
            .map_or(0, |w| w.cols);
        let fits_here = cols + f.sep_cols + field_cols <= width;
        // Too wide for any line, it is wrapped word by word from here, if
        // its first word still fits.
        let wrap_here = indent + field_cols > width && cols + f.sep_cols + first_word <= width;
        let fresh = !(n == 0 || fits_here || wrap_here);
        if fresh {
            new_line(&mut lines, &mut cur, &mut cols, &active, indent);
        } else {
            cur.push_str(&f.sep);
            track(&mut active, &f.sep);
            cols += f.sep_cols;
        }
        if cols + field_cols <= width {
            for w in &f.words {
                cur.push_str(&w.text);
                track(&mut active, &w.text);
            }
            cols += field_cols;
            continue;
        }
        // A field wider than what is left: word by word.
        let mut first = true;
        for w in &f.words {
            if w.space {
                // Spaces before the first word stay, as written; the others
                // are the gaps between words, put back below.
                if first && !fresh {
                    cur.push_str(&w.text);
                    cols += w.cols;
                }
                continue;
            }
            if w.cols == 0 {
                // Only colour escapes.
                cur.push_str(&w.text);
                track(&mut active, &w.text);
                continue;
            }
            let gap = usize::from(!first);
            if cols + gap + w.cols > width && cols > hang {
                new_line(&mut lines, &mut cur, &mut cols, &active, hang);
            } else if gap == 1 {
                cur.push(' ');
                cols += 1;
            }
            first = false;
            // A word wider than a whole line: cut it, escapes kept whole.
            let mut in_esc = false;
            for ch in w.text.chars() {
                if in_esc || ch == '\u{1b}' {
                    in_esc = ch != 'm';
                    cur.push(ch);
                    continue;
                }
                if cols >= width {
                    new_line(&mut lines, &mut cur, &mut cols, &active, hang);
                }
                cur.push(ch);
                cols += 1;
            }
            track(&mut active, &w.text);
        }
    }
    if cur.trim().is_empty() {
        if let Some(l) = lines.last_mut() {
            if !active.is_empty() && !l.ends_with(RESET) {
                l.push_str(RESET);
            }
        }
    } else {
        lines.push(cur.trim_end().to_string());
    }
    lines
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

    #[test]
    fn fit_line_breaks_between_columns_then_words_never_inside_one() {
        let line = "  10    61.750  client  connect(12, 127.0.0.1:5555) = 0         after 0.148 ms, woken by SYN-ACK #5 · ⇒ SYN #4 · state CLOSE → ESTABLISHED";
        let lines = fit_line(line, 60, 24);
        for l in &lines {
            assert!(visible_len(l) <= 60, "{l:?}");
        }
        assert_eq!(
            lines[0],
            "  10    61.750  client  connect(12, 127.0.0.1:5555) = 0"
        );
        assert!(
            lines[1].starts_with(&format!("{}after 0.148 ms", " ".repeat(24))),
            "{lines:?}"
        );
        // A field that needs more than a line hangs two columns in.
        let long = format!("label    {}", "word ".repeat(30));
        let hung = fit_line(&long, 40, 9);
        assert!(hung[0].starts_with("label    word"), "{hung:?}");
        assert!(
            hung[1].starts_with(&format!("{}word", " ".repeat(11))),
            "{hung:?}"
        );
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with("· state")),
            "{lines:?}"
        );
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&lines.join(" ")), words(line), "no word cut or lost");
        // A line that fits is left alone.
        assert_eq!(fit_line("a  b", 60, 24), vec!["a  b".to_string()]);
    }

    #[test]
    fn fit_line_keeps_colours_across_the_break() {
        let on = Pen { on: true };
        let line = format!(
            "head  {}",
            on.ink("one two three four five six seven", Ink::RED)
        );
        let lines = fit_line(&line, 20, 4);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(visible_len(l) <= 20, "{l:?}");
        }
        // Every continuation is painted again and every line ends its paint.
        for l in &lines[1..] {
            assert!(l.contains("\u{1b}[31m"), "{l:?}");
        }
        assert!(
            lines
                .iter()
                .all(|l| !l.contains('\u{1b}') || l.ends_with(RESET)),
            "{lines:?}"
        );
    }
}
