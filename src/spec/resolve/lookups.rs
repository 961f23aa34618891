//! The stack's `lookups:` and `outputs:`: their fields checked per kind,
//! their expressions resolved.

use super::*;

impl Resolver<'_> {
    /// `lookups:`: each one's fields (variables only), and, when they were
    /// made, what each found; one that found nothing is an error here.
    pub(super) fn lookups(
        &mut self,
        raw: BTreeMap<String, crate::spec::raw::RawLookup>,
        env: &Bindings<'_>,
    ) -> (BTreeMap<String, crate::lookup::Lookup>, BTreeMap<String, BTreeMap<String, Value>>) {
        let mut out = BTreeMap::new();
        let mut found = BTreeMap::new();
        for (name, l) in raw {
            let lp = join_key("lookups", &name);
            if !is_ident(&name) {
                self.at_key(&lp, format!("lookup name `{name}` must be letters, digits, `_` and `-`"), None);
                continue;
            }
            let Some(kind) = crate::lookup::kind(&l.kind) else {
                let help = help_for(&l.kind, crate::lookup::KINDS.iter().map(|k| k.type_name));
                self.at_value(&join_key(&lp, "type"), format!("unknown lookup type `{}`", l.kind), help);
                continue;
            };
            let before = self.diags.len();
            let text = |cx: &mut Self, v: String, field: &str| -> String {
                let at = join_key(&lp, field);
                let mut walk = Walk::default();
                match cx.template(Value::String(v), &at, "lookups", env, &mut walk) {
                    Template::Lit(Value::String(s)) if walk.sensitive.is_empty() => s,
                    _ => {
                        cx.at_value(&at, format!("`{at}` may use variables only"), None);
                        String::new()
                    }
                }
            };
            let given: Vec<&str> = [
                ("owners", !l.owners.is_empty()),
                ("name", l.name.is_some()),
                ("tags", !l.tags.is_empty()),
                ("domain", l.domain.is_some()),
                ("most_recent", l.most_recent.is_some()),
                ("private", l.private.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, set)| set.then_some(field))
            .collect();
            let owners: Vec<String> = l.owners.into_iter().map(|o| text(self, o, "owners")).collect();
            let name_pattern = l.name.map(|n| text(self, n, "name"));
            let tags: BTreeMap<String, String> = l.tags.into_iter().map(|(k, v)| (k, text(self, v, "tags"))).collect();
            let domain = l.domain.map(|d| text(self, d, "domain"));
            let override_id = l.override_id.map(|o| text(self, o, "override"));
            for field in &given {
                if !kind.fields.iter().any(|(f, _)| f == field) {
                    self.at_key(
                        &join_key(&lp, field),
                        format!("an `{}` lookup takes no `{field}`; it takes {}", kind.type_name, fields_of(kind)),
                        None,
                    );
                }
            }
            for (field, _) in kind.fields.iter().filter(|(f, required)| *required && !given.contains(f)) {
                self.at_key(
                    &lp,
                    format!(
                        "lookup `{name}`: an `{}` lookup needs `{field}`; it takes {}",
                        kind.type_name,
                        fields_of(kind)
                    ),
                    None,
                );
            }
            if override_id.is_some() && kind.overrides.is_none() {
                self.at_key(
                    &join_key(&lp, "override"),
                    format!("an `{}` lookup has no `override`", kind.type_name),
                    None,
                );
            }
            if self.diags.len() != before {
                continue;
            }
            match env.found.and_then(|f| f.get(&name)) {
                Some(Ok(values)) => {
                    found.insert(name.clone(), values.clone());
                }
                Some(Err(why)) => self.at_key(&lp, format!("lookup `{name}` ({}): {why}", kind.type_name), None),
                None => {}
            }
            out.insert(
                name,
                crate::lookup::Lookup {
                    kind,
                    owners,
                    name: name_pattern,
                    tags,
                    domain,
                    private: l.private.unwrap_or(false),
                    most_recent: l.most_recent.unwrap_or(false),
                    override_id,
                },
            );
        }
        (out, found)
    }

    /// `outputs:`: each value checked as a property is (its references,
    /// its variables); a value from `${env.…}` must be marked sensitive.
    pub(super) fn outputs(
        &mut self,
        raw: BTreeMap<String, crate::spec::raw::RawOutput>,
        env: &Bindings<'_>,
    ) -> BTreeMap<String, crate::spec::Output> {
        let mut out = BTreeMap::new();
        for (name, o) in raw {
            let op = join_key("outputs", &name);
            if !is_ident(&name) {
                self.at_key(&op, format!("output name `{name}` must be letters, digits, `_` and `-`"), None);
                continue;
            }
            let vp = join_key(&op, "value");
            let mut walk = Walk::default();
            let value = self.template(o.value, &vp, "outputs", env, &mut walk);
            if !walk.sensitive.is_empty() && !o.sensitive {
                self.at_value(
                    &vp,
                    format!(
                        "output `{name}` uses `${{env.…}}`: mark it `sensitive: true`, so it is never shown or kept"
                    ),
                    None,
                );
            }
            out.insert(name, crate::spec::Output { value, sensitive: o.sensitive, description: o.description });
        }
        out
    }
}

/// A lookup kind's fields, for errors: "`owners` and `name`".
fn fields_of(kind: &crate::lookup::LookupKind) -> String {
    let mut parts: Vec<String> = kind
        .fields
        .iter()
        .map(|(f, required)| if *required { format!("`{f}`") } else { format!("`{f}` (optional)") })
        .collect();
    if kind.overrides.is_some() {
        parts.push("`override` (optional)".into());
    }
    parts.join(", ")
}
