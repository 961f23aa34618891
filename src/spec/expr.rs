//! `${...}` interpolation inside spec strings.
//!
//! A string is a list of parts: literal text and references. `$${` writes a
//! literal `${`. A string that is exactly one reference takes the referenced
//! value's type (`port: ${var.db_port}` stays a number); otherwise references
//! are interpolated as text.

use std::fmt;

/// What a `${...}` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    /// `${var.NAME}`: a stack variable, after the environment's overrides.
    Var(String),
    /// `${env.NAME}`: a variable of converge's own process. Always sensitive.
    Env(String),
    /// `${region}`
    Region,
    /// `${stack}`
    Stack,
    /// `${environment}`
    Environment,
    /// `${resources.NAME.ATTR}`: an output of another resource; adds an edge.
    Resource { name: String, attr: String },
    /// `${stack.NAME.outputs.OUTPUT}`: an output of another stack of the
    /// same environment, as its last apply recorded it. Read before the
    /// plan; orders nothing.
    StackOutput { stack: String, output: String },
    /// `${lookups.NAME.ATTR}`: what a lookup found, before the plan.
    Lookup { name: String, attr: String },
    /// `${var.FLAG ? A : B}`: `A` when the boolean variable is true, else
    /// `B`. Decided when the stack is loaded (variables are known then), so
    /// only the chosen reference is an edge of the graph.
    Cond { var: String, then: Box<Reference>, otherwise: Box<Reference> },
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Var(n) => write!(f, "var.{n}"),
            Reference::Env(n) => write!(f, "env.{n}"),
            Reference::Region => f.write_str("region"),
            Reference::Stack => f.write_str("stack"),
            Reference::Environment => f.write_str("environment"),
            Reference::Resource { name, attr } => write!(f, "resources.{name}.{attr}"),
            Reference::StackOutput { stack, output } => write!(f, "stack.{stack}.outputs.{output}"),
            Reference::Lookup { name, attr } => write!(f, "lookups.{name}.{attr}"),
            Reference::Cond { var, then, otherwise } => write!(f, "var.{var} ? {then} : {otherwise}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Ref(Reference),
}

/// Why a `${...}` could not be parsed; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("unterminated `${{` (write `$${{` for a literal `${{`)")]
    Unterminated,
    #[error(
        "`${{{0}}}` is not a reference; expected var.NAME, env.NAME, resources.NAME.ATTR, lookups.NAME.ATTR, stack.NAME.outputs.OUTPUT, region, stack, environment or var.FLAG ? A : B"
    )]
    Invalid(String),
}

/// Splits `s` into literal text and references.
pub fn parse(s: &str) -> Result<Vec<Part>, ExprError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            lit.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(ExprError::Unterminated)?;
            let body = tail[..end].trim();
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Ref(parse_reference(body)?));
            rest = &tail[end + 1..];
        } else {
            lit.push('$');
            rest = &after[1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_reference(body: &str) -> Result<Reference, ExprError> {
    let invalid = || ExprError::Invalid(body.to_string());
    if let Some((cond, branches)) = body.split_once('?') {
        let (then, otherwise) = branches.split_once(':').ok_or_else(invalid)?;
        let Reference::Var(var) = parse_reference(cond.trim())? else { return Err(invalid()) };
        let branch = |b: &str| match parse_reference(b.trim()) {
            Ok(Reference::Cond { .. }) | Err(_) => Err(invalid()),
            Ok(r) => Ok(Box::new(r)),
        };
        return Ok(Reference::Cond { var, then: branch(then)?, otherwise: branch(otherwise)? });
    }
    let segs: Vec<&str> = body.split('.').collect();
    let r = match segs.as_slice() {
        ["region"] => Reference::Region,
        ["stack"] => Reference::Stack,
        ["environment"] => Reference::Environment,
        ["var", n] if is_ident(n) => Reference::Var(n.to_string()),
        ["env", n] if is_ident(n) => Reference::Env(n.to_string()),
        ["resources", n, a] if is_ident(n) && is_ident(a) => {
            Reference::Resource { name: n.to_string(), attr: a.to_string() }
        }
        ["lookups", n, a] if is_ident(n) && is_ident(a) => {
            Reference::Lookup { name: n.to_string(), attr: a.to_string() }
        }
        ["stack", n, "outputs", o] if is_ident(n) && is_ident(o) => {
            Reference::StackOutput { stack: n.to_string(), output: o.to_string() }
        }
        _ => return Err(invalid()),
    };
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, attr: &str) -> Part {
        Part::Ref(Reference::Resource { name: name.into(), attr: attr.into() })
    }

    #[test]
    fn plain_text_is_one_literal() {
        assert_eq!(parse("10.0.0.0/16").unwrap(), vec![Part::Lit("10.0.0.0/16".into())]);
        assert_eq!(parse("").unwrap(), vec![Part::Lit(String::new())]);
        assert_eq!(parse("costs $5").unwrap(), vec![Part::Lit("costs $5".into())]);
    }

    #[test]
    fn references_and_interpolation() {
        assert_eq!(parse("${resources.vpc.id}").unwrap(), vec![r("vpc", "id")]);
        assert_eq!(parse("${region}a").unwrap(), vec![Part::Ref(Reference::Region), Part::Lit("a".into())]);
        assert_eq!(
            parse("${stack}-${environment}-x").unwrap(),
            vec![
                Part::Ref(Reference::Stack),
                Part::Lit("-".into()),
                Part::Ref(Reference::Environment),
                Part::Lit("-x".into())
            ]
        );
        assert_eq!(parse("${ var.cidr }").unwrap(), vec![Part::Ref(Reference::Var("cidr".into()))]);
    }

    #[test]
    fn conditional_references() {
        assert_eq!(
            parse("${ var.per_az ? resources.nat_b.id : resources.nat_a.id }").unwrap(),
            vec![Part::Ref(Reference::Cond {
                var: "per_az".into(),
                then: Box::new(Reference::Resource { name: "nat_b".into(), attr: "id".into() }),
                otherwise: Box::new(Reference::Resource { name: "nat_a".into(), attr: "id".into() }),
            })]
        );
        for bad in [
            "${var.x ? resources.a.id}",
            "${resources.a.id ? var.b : var.c}",
            "${var.x ? var.y ? var.z : var.w : var.v}",
        ] {
            assert!(matches!(parse(bad), Err(ExprError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn escape_writes_a_literal() {
        assert_eq!(parse("$${HOME}/x").unwrap(), vec![Part::Lit("${HOME}/x".into())]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse("${var.x").unwrap_err(), ExprError::Unterminated);
        assert_eq!(parse("${resources.vpc}").unwrap_err(), ExprError::Invalid("resources.vpc".into()));
        assert_eq!(parse("${foo}").unwrap_err(), ExprError::Invalid("foo".into()));
        assert_eq!(parse("${var.}").unwrap_err(), ExprError::Invalid("var.".into()));
    }
}
