//! Each resource: its kind, properties, tags, names and flags resolved
//! and checked; the links between resources (`check_all`).

use super::*;

impl Resolver<'_> {
    /// Tag values with their `${…}` resolved: variables, `${stack}`,
    /// `${environment}`, `${region}`; not outputs or secrets, since tags
    /// are shown everywhere.
    pub(super) fn tag_values(
        &mut self,
        tags: BTreeMap<String, String>,
        path: &str,
        env: &Bindings<'_>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in tags {
            let at = join_key(path, &key);
            let mut walk = Walk::default();
            let value = match self.template(Value::String(value), &at, "tags", env, &mut walk) {
                Template::Lit(Value::String(s)) if walk.sensitive.is_empty() => s,
                Template::Lit(Value::String(_)) => {
                    self.at_value(&at, "a tag may not use `${env.…}`: tags are not secret".into(), None);
                    String::new()
                }
                _ => {
                    self.at_value(&at, "a tag may use variables but not resource outputs".into(), None);
                    String::new()
                }
            };
            out.insert(key, value);
        }
        out
    }

    /// AWS's tag rules, the strictest of the services converge tags (EC2,
    /// S3, RDS …): at most [`Kind::max_tags`] tags an object (50, or 10 on
    /// an S3 object), keys of 1-128 and values of at most 256 characters,
    /// and no key starting `aws:` (AWS's own). Converge adds
    /// [`crate::tags::OWN_TAGS`] (six, `Name` among them unless the spec
    /// sets it), so a spec may set 44 tags, or 4 on an S3 object.
    pub(super) fn check_tags(&mut self, kind: &dyn DynKind, tags: &BTreeMap<String, String>, path: &str) {
        let max = kind.max_tags();
        let total = tags.len() + crate::tags::OWN_TAGS.iter().filter(|k| !tags.contains_key(**k)).count();
        if total > max {
            self.at_key(
                path,
                format!(
                    "{total} tags with the stack's, the environment's and converge's own ({}): AWS allows {max} on {} {}",
                    crate::tags::OWN_TAGS.len(),
                    if max == crate::tags::MAX_TAGS { "an object of" } else { "one" },
                    kind.type_name()
                ),
                Some(format!(
                    "converge adds {}; set at most {} tags on this resource, its environment and the stack together",
                    crate::tags::OWN_TAGS.join(", "),
                    max - crate::tags::OWN_TAGS.len()
                )),
            );
        }
        for (k, v) in tags {
            let at = join_key(path, k);
            if k.is_empty() || k.chars().count() > 128 {
                self.at_key(&at, format!("tag key `{k}` must be 1-128 characters"), None);
            }
            if k.to_ascii_lowercase().starts_with("aws:") {
                self.at_key(&at, format!("tag key `{k}`: the `aws:` prefix is reserved for AWS"), None);
            }
            if v.chars().count() > 256 {
                self.at_key(&at, format!("tag `{k}`: a value is at most 256 characters"), None);
            }
        }
    }

    /// [`Resolver::resource`] of each, in order. A large stack is split among
    /// threads, each with a context of its own: their problems and the
    /// secrets they read are then merged in order, so the result is the
    /// same as on one thread.
    pub(super) fn resources(
        &mut self,
        todo: Vec<(String, RawResource, &'static dyn DynKind)>,
        env: &Bindings<'_>,
        stack_tags: &BTreeMap<String, String>,
        env_tags: &BTreeMap<String, String>,
    ) -> Vec<(String, Option<Resource>)> {
        let threads = self.threads.min(todo.len() / RESOURCES_PER_THREAD).max(1);
        let (file, src) = (self.file.clone(), self.src);
        let helper = || Resolver::new(file.clone(), src, 1);
        let (helpers, done) = crate::par::map_chunks(todo, threads, self, helper, |cx, (name, r, kind)| {
            let res = cx.resource(&name, r, kind, env, stack_tags, env_tags);
            (name, res)
        });
        for cx in helpers {
            self.diags.extend(cx.diags);
            self.secret_refs.extend(cx.secret_refs);
            self.inputs.extend(cx.inputs);
        }
        done
    }

    pub(super) fn resource(
        &mut self,
        name: &str,
        raw: RawResource,
        kind: &'static dyn DynKind,
        env: &Bindings<'_>,
        stack_tags: &BTreeMap<String, String>,
        env_tags: &BTreeMap<String, String>,
    ) -> Option<Resource> {
        let RawResource {
            kind: _,
            name: physical,
            properties,
            depends_on,
            tags,
            wait_timeout,
            enabled: _,
            protect,
            adopt,
            ignore_changes,
            renamed_from,
        } = raw;
        let protect = match protect {
            Some(v) => self.flag(&v, &join_key(&join_key("resources", name), "protect"), env.vars, "protect"),
            None => kind.protected(),
        };
        let rp = join_key("resources", name);
        let refusal = match kind.import_by() {
            _ if !adopt => None,
            kinds::ImportBy::Name => None,
            kinds::ImportBy::Ec2Id => Some(format!(
                "`adopt:` takes over by name, and {} objects are found by their tags; take one over with `converge import STACK --env ENV {name} ID`",
                kind.type_name()
            )),
            kinds::ImportBy::Never(why) => Some(format!("{} objects cannot be adopted: {why}", kind.type_name())),
        };
        if let Some(why) = refusal {
            self.at_key(&join_key(&rp, "adopt"), why, None);
        }
        let before = self.diags.len();
        if !ignore_changes.is_empty() {
            let names = kinds::ignorable(kind);
            let ip = join_key(&rp, "ignore_changes");
            for (i, attr) in ignore_changes.iter().enumerate() {
                if !names.contains(attr) {
                    let help = crate::spec::help_for(attr, names.iter().map(String::as_str));
                    self.at_value(
                        &crate::spec::location::join_index(&ip, i),
                        format!("`ignore_changes`: {} has no property `{attr}`", kind.type_name()),
                        help,
                    );
                }
            }
        }
        let mut walk = Walk::default();
        let pp = join_key(&rp, "properties");
        let mut props = BTreeMap::new();
        let mut path = String::with_capacity(pp.len() + 16);
        for (k, v) in properties {
            path.clear();
            push_key(&mut path, &pp, &k);
            let t = self.template(v, &path, &k, env, &mut walk);
            props.insert(k, t);
        }
        let props = Template::Map(props);
        // Typed check of the kind's properties, references as unknowns; the
        // result is kept for the checks across resources (`canonical`, until
        // they are done).
        let mut checked = None;
        if self.diags.len() == before {
            let written = props.placeholder();
            // What AWS would refuse of the values as written, reported once
            // the kind's typed check has passed.
            let secret = |top: &str| walk.sensitive.contains(top);
            let refused = crate::limits::check(kind.sends(), &written, &secret);
            match kind.canonicalize(written) {
                Ok(v) => {
                    for v in refused {
                        let full = format!("{pp}.{}", v.path);
                        self.at_value(&full, format!("`{full}`: {}", v.message), None);
                    }
                    checked = Some(std::sync::Arc::new(v));
                }
                Err(e) => {
                    let top = e.path.split(['.', '[']).next().unwrap_or_default();
                    let sensitive = walk.sensitive.contains(top);
                    let full =
                        if e.path.is_empty() { pp.clone() } else { format!("{pp}.{}", e.path).replace(".[", "[") };
                    self.serde_error(&full, &e.message, None, sensitive);
                }
            }
        }

        let mut deps = walk.refs;
        for (i, d) in depends_on.iter().enumerate() {
            if env.disabled.contains(d) {
                // Nothing to wait for where it does not exist.
            } else if env.kinds.contains_key(d) {
                deps.insert(d.clone());
            } else {
                let help = help_for(d, env.kinds.keys().map(String::as_str));
                self.at_value(
                    &join_index(&join_key(&rp, "depends_on"), i),
                    format!("`depends_on` names unknown resource `{d}`"),
                    help,
                );
            }
        }

        let mut name_walk = Walk::default();
        let default_name = physical.is_none();
        let physical_name = match physical {
            None => default_physical_name(env.stack, env.env, name),
            Some(p) => match self.template(Value::String(p), &join_key(&rp, "name"), "name", env, &mut name_walk) {
                Template::Lit(Value::String(_)) if !name_walk.sensitive.is_empty() => {
                    self.at_value(
                        &join_key(&rp, "name"),
                        "`name` may not use `${env.…}`: names are shown in plans, logs and the AWS console, so they cannot hold secrets; use a variable".into(),
                        None,
                    );
                    String::new()
                }
                Template::Lit(Value::String(s)) => s,
                _ => {
                    self.at_value(
                        &join_key(&rp, "name"),
                        "`name` may use variables but not resource outputs".into(),
                        None,
                    );
                    String::new()
                }
            },
        };
        if let Err(why) = kind.check_physical_name(&physical_name) {
            self.at_key(&join_key(&rp, "name"), format!("physical name `{physical_name}` of `{name}`: {why}"), None);
        }

        let wait_timeout = wait_timeout.map(|t| {
            match self.template(
                Value::String(t.clone()),
                &join_key(&rp, "wait_timeout"),
                "wait_timeout",
                env,
                &mut Walk::default(),
            ) {
                Template::Lit(Value::String(s)) => s,
                _ => t,
            }
        });
        let timeout = match wait_timeout {
            None => kind.default_wait(),
            Some(t) => crate::spec::parse_duration(&t).unwrap_or_else(|| {
                self.at_value(
                    &join_key(&rp, "wait_timeout"),
                    format!("`wait_timeout: {t}` is not a duration; write e.g. `90s`, `45m` or `2h`"),
                    None,
                );
                kind.default_wait()
            }),
        };

        let mut all_tags: BTreeMap<String, String> = stack_tags.clone();
        all_tags.extend(env_tags.clone());
        let tp = join_key(&rp, "tags");
        for key in tags.keys().filter(|k| k.starts_with("converge:")) {
            self.at_key(&join_key(&tp, key), format!("tag `{key}` is reserved"), None);
        }
        all_tags.extend(self.tag_values(tags, &tp, env));
        self.check_tags(kind, &all_tags, &tp);
        all_tags.entry("Name".into()).or_insert_with(|| physical_name.clone());
        all_tags.insert(TAG_STACK.into(), env.stack.into());
        all_tags.insert(TAG_ENV.into(), env.env.into());
        all_tags.insert(TAG_RESOURCE.into(), name.into());

        if let Some(old) = &renamed_from {
            let at = join_key(&rp, "renamed_from");
            if !is_ident(old) || old == name {
                self.at_value(
                    &at,
                    format!("`renamed_from: {old}` must name the resource's key before the rename"),
                    None,
                );
            } else if env.kinds.contains_key(old) {
                self.at_value(
                    &at,
                    format!(
                        "`renamed_from: {old}`: `{old}` is still a resource of the spec; a rename leaves the old key"
                    ),
                    None,
                );
            } else if kind.physical_name_output().is_some() && default_name {
                // Its default name comes from the key: keep the old one, or
                // the rename replaces the object after all.
                let was = default_physical_name(env.stack, env.env, old);
                self.at_value(
                    &at,
                    format!(
                        "renaming `{old}` to `{name}` changes its default name from `{was}` to `{physical_name}`, which AWS cannot rename: {} would be replaced",
                        kind.type_name()
                    ),
                    Some(format!("keep its name: add `name: {}`", was.replacen(&format!("{}-{}-", env.stack, env.env), "${stack}-${environment}-", 1))),
                );
            }
        }
        (self.diags.len() == before).then(|| Resource {
            name: name.to_string(),
            kind,
            physical_name,
            props,
            deps,
            tags: all_tags,
            sensitive: walk.sensitive,
            timeout,
            protect,
            adopt,
            canonical: checked,
            ignore_changes: ignore_changes.into_iter().collect(),
            renamed_from,
        })
    }

    /// Every kind's [`Kind::check_links`], reported at this resource's
    /// property with the linked resource's line in the help.
    pub(super) fn check_links(&mut self, resources: &BTreeMap<String, Resource>) {
        let mut by_kind: BTreeMap<&'static str, (&'static dyn DynKind, Vec<kinds::Member<'_>>)> = BTreeMap::new();
        let mut problems = Vec::new();
        for r in resources.values() {
            let Some(props) = r.canonical.as_deref() else { continue };
            let Template::Map(raw) = &r.props else { continue };
            let link_of = |attr: &str| {
                let Some(Template::Interp(parts)) = raw.get(attr) else { return None };
                let [Part::Ref(Reference::Resource { name, .. })] = parts.as_slice() else { return None };
                Some(name.as_str())
            };
            let linked = |attr: &str| {
                let name = link_of(attr)?;
                let other = resources.get(name)?;
                let props = other.canonical.as_deref()?;
                Some(kinds::Linked { name: name.to_string(), kind: other.kind.type_name(), props })
            };
            for problem in r.kind.check_links(props, &linked) {
                problems.push((r.name.clone(), problem));
            }
            let links = raw.keys().filter_map(|k| Some((k.as_str(), link_of(k)?))).collect();
            let entry = by_kind.entry(r.kind.type_name()).or_insert_with(|| (r.kind, Vec::new()));
            entry.1.push(kinds::Member { name: &r.name, props, links });
        }
        for (kind, members) in by_kind.into_values() {
            problems.extend(kind.check_all(&members));
        }
        for (name, problem) in problems {
            self.link_problem(&name, problem);
        }
    }

    /// Reports what [`Kind::check_links`] or [`Kind::check_all`] found at
    /// resource `name`'s property, with the other resource's line in the
    /// help.
    pub(super) fn link_problem(&mut self, name: &str, problem: kinds::LinkProblem) {
        let here = join_key(&join_key(&join_key("resources", name), "properties"), &problem.attr);
        let help = problem.other.map(|(other, attr)| {
            let there = join_key(&join_key(&join_key("resources", &other), "properties"), &attr);
            match self.index().value(&there).or_else(|| self.index().key(&join_key("resources", &other))) {
                Some(pos) => format!("`{other}.{attr}` is set at {}:{}:{}", self.file.display(), pos.line, pos.col),
                None => format!("see `{other}.{attr}`"),
            }
        });
        let message = format!("`{here}`: {}", problem.message);
        if self.index().value(&here).is_some() {
            self.at_value(&here, message, help);
        } else {
            self.at_key(&join_key("resources", name), message, help);
        }
    }

    /// `enabled:` or `protect:`: `true`, `false` or a boolean variable.
    pub(super) fn flag(&mut self, v: &Value, path: &str, vars: &BTreeMap<String, Value>, field: &str) -> bool {
        let var = match v {
            Value::Bool(b) => return *b,
            Value::String(s) => match expr::parse(s).as_deref() {
                Ok([Part::Ref(Reference::Var(n))]) => Some(n.clone()),
                _ => None,
            },
            _ => None,
        };
        match var.as_ref().map(|n| (n, vars.get(n))) {
            Some((_, Some(Value::Bool(b)))) => *b,
            Some((n, Some(_))) => {
                self.at_value(path, format!("`{field}: ${{var.{n}}}`: variable `{n}` must be true or false"), None);
                true
            }
            Some((n, None)) => {
                let help = help_for(n, vars.keys().map(String::as_str));
                self.at_value(path, format!("`{path}` references undefined variable `{n}`"), help);
                true
            }
            None => {
                self.at_value(path, format!("`{field}` is true, false or `${{var.NAME}}` (a boolean variable)"), None);
                true
            }
        }
    }
}
