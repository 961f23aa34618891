//! Rendering `templates/` and `cloud-init/` files with minijinja.
//!
//! Strict: a variable the template uses but `vars` lacks is an error, never
//! an empty string in a production config file.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A config file keeps its final newline.
    let syntax = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build();
    env.set_syntax(syntax.expect("the default delimiters are valid"));
    env
}

/// A template problem: the line in the template (if known) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn error(e: minijinja::Error) -> RenderError {
    let message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    RenderError { line: e.line(), message }
}

/// Parses `source`: syntax errors are found before anything is rendered.
pub fn check(source: &str) -> Result<(), RenderError> {
    env().template_from_str(source).map(|_| ()).map_err(error)
}

/// Renders `source` with `vars` (a map).
pub fn render(source: &str, vars: &Value) -> Result<String, RenderError> {
    env().render_str(source, minijinja::Value::from(minijinja::value::Serde(vars))).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_and_keeps_the_trailing_newline() {
        let out = render(
            "db_host = '{{ db_host }}'\n{% for b in buckets %}{{ b }} {% endfor %}\n",
            &json!({"db_host": "db.internal", "buckets": ["a", "b"]}),
        )
        .unwrap();
        assert_eq!(out, "db_host = 'db.internal'\na b \n");
    }

    #[test]
    fn undefined_variables_and_syntax_errors_are_errors() {
        let e = render("x\n{{ missing }}\n", &json!({})).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("undefined"), "{e}");
        let e = check("{% if x %}\nno end\n").unwrap_err();
        assert!(e.message.contains("syntax"), "{e}");
    }
}
