//! All of converge's output goes through here: one place decides colour and
//! stream, and the `print_stdout` lint keeps it that way.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Bold,
    Dim,
    Add,
    Change,
    Replace,
    Remove,
    Error,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "1",
            Style::Dim => "2",
            Style::Add => "32",
            Style::Change => "33",
            Style::Replace => "35",
            Style::Remove => "31",
            Style::Error => "1;31",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub color: bool,
    /// stdout is a terminal: progress is drawn live (see
    /// [`crate::progress`]). Live drawing is indicatif's, on stdout.
    pub tty: bool,
}

impl Printer {
    /// Colour only when stdout is a terminal, `NO_COLOR` is unset and
    /// `--no-color` was not given.
    pub fn new(no_color_flag: bool) -> Printer {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let tty = std::io::stdout().is_terminal();
        Printer { color: !no_color_flag && !no_color_env && tty, tty }
    }

    pub fn plain() -> Printer {
        Printer { color: false, tty: false }
    }

    pub fn paint(&self, style: Style, text: &str) -> String {
        if !self.color || style == Style::Plain || text.is_empty() {
            text.to_string()
        } else {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        }
    }

    /// A line (or lines) on stdout.
    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    }

    /// A line on stderr: errors and prompts.
    pub fn err(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    /// A prompt without newline, on stderr, so stdout stays clean for pipes.
    pub fn prompt(&self, text: &str) {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "{text}");
        let _ = e.flush();
    }
}
