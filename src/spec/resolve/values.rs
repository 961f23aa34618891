//! Values: `${…}` references and conditionals, and rendered templates.

use super::*;

impl Resolver<'_> {
    /// Substitutes everything known offline in `v`; keeps resource
    /// references. `top` is the top-level property this value is under.
    pub(super) fn template(
        &mut self,
        v: Value,
        path: &str,
        top: &str,
        env: &Bindings<'_>,
        walk: &mut Walk,
    ) -> Template {
        match v {
            Value::String(s) => self.string(&s, path, top, env, walk),
            // One path buffer for all the children: paths are only read
            // when something is reported.
            Value::Array(items) => {
                let mut child = String::with_capacity(path.len() + 4);
                Template::List(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            child.clear();
                            push_index(&mut child, path, i);
                            self.template(v, &child, top, env, walk)
                        })
                        .collect(),
                )
            }
            Value::Object(m) if m.contains_key("$template") => self.render_node(m, path, top, env, walk),
            Value::Object(m) => {
                let mut child = String::with_capacity(path.len() + 16);
                Template::Map(
                    m.into_iter()
                        .map(|(k, v)| {
                            child.clear();
                            push_key(&mut child, path, &k);
                            let t = self.template(v, &child, top, env, walk);
                            (k, t)
                        })
                        .collect(),
                )
            }
            other => Template::Lit(other),
        }
    }

    /// `{ $template: PATH, vars: {...} }`: the file is read and parsed now,
    /// and rendered with placeholder values so that a name the template
    /// uses but `vars` lacks is reported before any AWS call.
    pub(super) fn render_node(
        &mut self,
        m: serde_json::Map<String, Value>,
        path: &str,
        top: &str,
        env: &Bindings<'_>,
        walk: &mut Walk,
    ) -> Template {
        let tpath = join_key(path, "$template");
        for k in m.keys().filter(|k| *k != "$template" && *k != "vars") {
            self.at_key(
                &join_key(path, k),
                format!("unknown field `{k}` next to `$template`"),
                Some("expected `vars`".into()),
            );
        }
        let Some(Value::String(file)) = m.get("$template") else {
            self.at_value(&tpath, "`$template` takes a file path, relative to the stack file".into(), None);
            return Template::Lit(Value::Null);
        };
        let vars = match m.get("vars").cloned().unwrap_or(Value::Object(Default::default())) {
            v @ Value::Object(_) => self.template(v, &join_key(path, "vars"), top, env, walk),
            _ => {
                self.at_value(&join_key(path, "vars"), "`vars` is a map of names to values".into(), None);
                return Template::Lit(Value::Null);
            }
        };
        let base = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let source = match read_limited(&base.join(file), MAX_TEMPLATE_BYTES) {
            Ok(s) => s,
            Err(e) => {
                self.at_value(&tpath, format!("cannot read template `{file}` (relative to the stack file): {e}"), None);
                return Template::Lit(Value::Null);
            }
        };
        let placeholders = vars.resolve(&|n, a| Some(Value::String(format!("<{n}.{a}>")))).unwrap_or(Value::Null);
        let checked = crate::render::check(&source).and_then(|_| crate::render::render(&source, &placeholders));
        if let Err(e) = checked {
            self.at_value(&tpath, format!("template `{file}`, {e}"), None);
            return Template::Lit(Value::Null);
        }
        Template::Render { path: file.clone(), source: source.into(), vars: Box::new(vars) }
    }

    pub(super) fn string(&mut self, s: &str, path: &str, top: &str, env: &Bindings<'_>, walk: &mut Walk) -> Template {
        let parts = match expr::parse(s) {
            Ok(p) => p,
            Err(e) => {
                self.at_value(path, format!("`{path}`: {e}"), None);
                return Template::Lit(Value::Null);
            }
        };
        let single = parts.len() == 1;
        let mut out: Vec<Part> = Vec::new();
        for part in parts {
            let value: Value = match part {
                Part::Lit(t) => Value::String(t),
                Part::Ref(r) => {
                    let r = self.decide(r, path, env);
                    match self.reference(&r, path, top, env, walk) {
                        Some(v) => v,
                        None => {
                            out.push(Part::Ref(r));
                            continue;
                        }
                    }
                }
            };
            if single {
                return Template::Lit(value);
            }
            let text = match value {
                Value::String(t) => t,
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => {
                    self.at_value(
                        path,
                        format!("`{path}`: a list, map or null cannot be interpolated into text"),
                        None,
                    );
                    String::new()
                }
            };
            match out.last_mut() {
                Some(Part::Lit(prev)) => prev.push_str(&text),
                _ => out.push(Part::Lit(text)),
            }
        }
        match out.as_slice() {
            [Part::Lit(t)] => Template::Lit(Value::String(t.clone())),
            [] => Template::Lit(Value::String(String::new())),
            _ => Template::Interp(out),
        }
    }

    /// A conditional reference reduced to the branch its variable chooses;
    /// any other reference as it is.
    pub(super) fn decide(&mut self, r: Reference, path: &str, env: &Bindings<'_>) -> Reference {
        let Reference::Cond { var, then, otherwise } = r else { return r };
        match env.vars.get(&var) {
            Some(Value::Bool(true)) => *then,
            Some(Value::Bool(false)) => *otherwise,
            Some(_) => {
                self.at_value(path, format!("`{path}`: `var.{var}` in a condition must be true or false"), None);
                *then
            }
            None => {
                let help = help_for(&var, env.vars.keys().map(String::as_str));
                self.at_value(path, format!("`{path}` references undefined variable `{var}`"), help);
                *then
            }
        }
    }

    /// The value of an offline reference, or `None` for a resource output
    /// (checked here, resolved later).
    pub(super) fn reference(
        &mut self,
        r: &Reference,
        path: &str,
        top: &str,
        env: &Bindings<'_>,
        walk: &mut Walk,
    ) -> Option<Value> {
        match r {
            Reference::Region => Some(env.region.into()),
            Reference::Stack => Some(env.stack.into()),
            Reference::Environment => Some(env.env.into()),
            Reference::Var(n) => match env.vars.get(n) {
                Some(v) => Some(v.clone()),
                None => {
                    let help = help_for(n, env.vars.keys().map(String::as_str));
                    self.at_value(path, format!("`{path}` references undefined variable `{n}`"), help);
                    Some(Value::Null)
                }
            },
            Reference::Env(n) => {
                walk.sensitive.insert(top.to_string());
                self.secret_refs.insert(n.clone());
                match std::env::var(n) {
                    Ok(v) => Some(Value::String(v)),
                    Err(_) if !env.require_secrets => Some(Value::String(String::new())),
                    Err(_) => {
                        self.at_value(
                            path,
                            format!("`{path}` needs environment variable `{n}`, which is not set"),
                            Some(format!("export {n}=… before running converge (it is never printed or stored)")),
                        );
                        Some(Value::Null)
                    }
                }
            }
            // Callers decide conditions first; deciding here too keeps this
            // total.
            Reference::Cond { .. } => {
                let decided = self.decide(r.clone(), path, env);
                self.reference(&decided, path, top, env, walk)
            }
            Reference::Lookup { name, attr } => {
                let Some(l) = env.lookups.get(name) else {
                    let help = help_for(name, env.lookups.keys().map(String::as_str));
                    self.at_value(path, format!("`{path}` references unknown lookup `{name}`"), help);
                    return Some(Value::Null);
                };
                if !l.kind.outputs.contains(&attr.as_str()) {
                    let help = help_for(attr, l.kind.outputs.iter().copied());
                    self.at_value(
                        path,
                        format!("`{path}`: lookup `{name}` ({}) has no `{attr}`", l.kind.type_name),
                        help,
                    );
                    return Some(Value::Null);
                }
                if matches!(top, "name" | "tags") {
                    self.at_value(
                        path,
                        format!("`{path}`: a {top} may not use a lookup (names and tags are known offline)"),
                        None,
                    );
                    return Some(Value::Null);
                }
                Some(match env.found.map(|f| f.get(name)) {
                    None => crate::value::unknown(),
                    Some(Some(Ok(values))) => match values.get(attr) {
                        Some(v) => v.clone(),
                        None => {
                            self.at_value(
                                path,
                                format!("`{path}`: lookup `{name}` was given by its `override`, which sets only `id`"),
                                None,
                            );
                            Value::Null
                        }
                    },
                    // Reported where the lookup is written.
                    Some(_) => crate::value::unknown(),
                })
            }
            Reference::StackOutput { stack, output } => {
                let key = (stack.clone(), output.clone());
                if stack == env.stack {
                    self.at_value(
                        path,
                        format!(
                            "`{path}` reads this stack's own output: use the resource's, `${{resources.NAME.ATTR}}`"
                        ),
                        None,
                    );
                    return Some(Value::Null);
                }
                if matches!(top, "name" | "tags") {
                    self.at_value(
                        path,
                        format!(
                            "`{path}`: a {top} may not use another stack's output (names and tags are known offline)"
                        ),
                        None,
                    );
                    return Some(Value::Null);
                }
                let value = match env.stack_outputs.map(|m| m.get(&key)) {
                    // Offline: known once the other stack's record is read.
                    None => crate::value::unknown(),
                    Some(Some(Ok(v))) => v.clone(),
                    Some(Some(Err(why))) => {
                        self.at_value(path, format!("`{path}`: {why}"), None);
                        Value::Null
                    }
                    Some(None) => {
                        self.at_value(path, format!("`{path}`: stack `{stack}`'s outputs were not read"), None);
                        Value::Null
                    }
                };
                self.inputs.insert(key, value.clone());
                Some(value)
            }
            Reference::Resource { name, attr } => {
                match env.kinds.get(name) {
                    Some(_) if env.disabled.contains(name) => {
                        self.at_value(
                            path,
                            format!("`{path}` references `{name}`, which is disabled in environment `{}`", env.env),
                            Some(format!("choose with a condition: ${{var.FLAG ? resources.{name}.{attr} : …}}")),
                        );
                    }
                    None => {
                        let help = help_for(name, env.kinds.keys().map(String::as_str));
                        self.at_value(path, format!("`{path}` references unknown resource `{name}`"), help);
                    }
                    Some(k) if !k.outputs().contains(&attr.as_str()) => {
                        let help = help_for(attr, k.outputs().iter().copied());
                        self.at_value(
                            path,
                            format!("`{path}`: resource `{name}` ({}) has no output `{attr}`", k.type_name()),
                            help,
                        );
                    }
                    Some(_) => {
                        walk.refs.insert(name.clone());
                    }
                }
                None
            }
        }
    }
}
