//! Loading a stack for a run: offline first (every problem, no AWS
//! call), then with what it reads from outside (lookups, other stacks'
//! outputs), or pinned to what a known good or a saved plan read.

use std::collections::{BTreeMap, BTreeSet};

use super::StackRef;
use crate::aws::Aws;
use crate::spec::{LoadOptions, Stack};

/// Loads and validates the stack: every problem, and no AWS call. Other
/// stacks' outputs it reads are unknown until [`with_inputs`].
pub fn load(args: &StackRef, require_secrets: bool) -> anyhow::Result<Stack> {
    load_with(args, require_secrets, None, None)
}

fn load_with(
    args: &StackRef,
    require_secrets: bool,
    stack_outputs: Option<crate::spec::StackOutputs>,
    lookups: Option<BTreeMap<String, crate::lookup::Found>>,
) -> anyhow::Result<Stack> {
    let opts = LoadOptions {
        env: args.env.clone(),
        region: args.region.clone(),
        require_secrets,
        vars: args.vars.clone(),
        stack_outputs,
        lookups,
    };
    Ok(crate::spec::load(&args.file, &opts)?)
}

/// `stack` loaded again with the lookups and other stacks' outputs a known
/// good kept (what it was applied with), when it kept them all; else with
/// them read now ([`with_inputs`]).
pub async fn with_pinned_inputs(
    args: &StackRef,
    stack: Stack,
    good: &crate::state::known_good::KnownGood,
    aws: &Aws,
    store: &crate::state::Store,
) -> anyhow::Result<Stack> {
    if stack.inputs.is_empty() && stack.lookups.is_empty() {
        return Ok(stack);
    }
    if !good.pins(&stack) {
        return with_inputs(args, stack, true, aws, store).await;
    }
    load_pinned(args, &good.found, &good.inputs)
}

/// The stack loaded with the lookup results and other stacks' outputs
/// given (a saved plan's): no AWS call.
pub fn load_pinned(
    args: &StackRef,
    found: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    inputs: &[(String, String, serde_json::Value)],
) -> anyhow::Result<Stack> {
    let outputs = inputs.iter().map(|(s, o, v)| ((s.clone(), o.clone()), Ok(v.clone()))).collect();
    let found = found.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect();
    load_with(args, true, Some(outputs), Some(found))
}

/// What a loaded stack's lookups found, to load it again with (`None`:
/// they were not made).
fn found_of(stack: &Stack) -> Option<BTreeMap<String, crate::lookup::Found>> {
    (!stack.lookups.is_empty() && stack.found.len() == stack.lookups.len())
        .then(|| stack.found.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect())
}

/// `stack` with the values of the other stacks' outputs it reads
/// (`${stack.NAME.outputs.OUTPUT}`): each such stack's record of its last
/// apply in this environment, read from `store` (one read a stack, no
/// change), and the stack loaded again with them. A stack that reads none
/// is returned as it is.
///
/// # Errors
/// A record cannot be read; an output is missing, sensitive or not known
/// (placed where the stack uses it).
pub async fn with_inputs(
    args: &StackRef,
    stack: Stack,
    require_secrets: bool,
    aws: &Aws,
    store: &crate::state::Store,
) -> anyhow::Result<Stack> {
    use crate::state::applied;
    if stack.inputs.is_empty() && stack.lookups.is_empty() {
        return Ok(stack);
    }
    let lookups =
        if stack.lookups.is_empty() { None } else { Some(crate::lookup::perform(aws, &stack.lookups).await?) };
    let env = &stack.env;
    let others: BTreeSet<&String> = stack.inputs.keys().map(|(s, _)| s).collect();
    let mut records = BTreeMap::new();
    for other in others {
        records.insert(other.clone(), applied::read(aws, store, other, env).await?);
    }
    let values = stack
        .inputs
        .keys()
        .map(|(other, output)| {
            let value = match &records[other] {
                None => Err(format!(
                    "stack `{other}` has no apply recorded for environment `{env}` in {}: apply it first",
                    store.describe(&applied::key(other, env))
                )),
                Some(rec) => match rec.outputs.get(output) {
                    None => Err(format!(
                        "stack `{other}`'s last apply in `{env}` recorded no output `{output}` (it recorded: {})",
                        if rec.outputs.is_empty() {
                            "none".to_string()
                        } else {
                            rec.outputs.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        }
                    )),
                    Some(o) if o.sensitive => Err(format!(
                        "stack `{other}`'s output `{output}` is sensitive: it is never kept, so no other stack can read it"
                    )),
                    Some(o) => o.value.clone().ok_or_else(|| {
                        format!("stack `{other}`'s output `{output}` is not known: a resource it uses was not applied in `{env}`")
                    }),
                },
            };
            ((other.clone(), output.clone()), value)
        })
        .collect();
    load_with(args, require_secrets, Some(values), lookups)
}

/// `stack` as it was last applied: the variables that apply was given
/// from outside the file ([`crate::state::applied::Applied::vars`]) for
/// each one this command does not give. What drift compares with: a
/// scheduled job does not know the commit the last deploy passed as
/// `--var image_tag=…`.
///
/// # Errors
/// The stack does not load with them (a value its variable's type no
/// longer takes).
pub fn as_applied(
    args: &StackRef,
    stack: Stack,
    applied: Option<&crate::state::applied::Applied>,
    require_secrets: bool,
) -> anyhow::Result<Stack> {
    let missing: Vec<(String, String)> = applied
        .map(|a| {
            a.vars
                .iter()
                // Still declared (a variable since removed is not), and not
                // given by this command.
                .filter(|(k, _)| stack.vars.contains_key(*k) && !stack.overrides.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if missing.is_empty() {
        return Ok(stack);
    }
    let mut with = args.clone();
    with.vars.extend(missing);
    // The other stacks' outputs as already read (unknown if not).
    let read =
        (!stack.inputs.is_empty()).then(|| stack.inputs.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect());
    load_with(&with, require_secrets, read, found_of(&stack))
}

/// Checks `--target` names against the stack.
pub fn targets(stack: &Stack, names: &[String]) -> anyhow::Result<Option<BTreeSet<String>>> {
    if names.is_empty() {
        return Ok(None);
    }
    for n in names {
        if !stack.resources.contains_key(n) {
            let help = crate::spec::help_for(n, stack.resources.keys().map(String::as_str)).unwrap_or_default();
            anyhow::bail!("--target {n}: no such resource in {}; {help}", stack.file.display());
        }
    }
    Ok(Some(names.iter().cloned().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_takes_the_last_applies_variables_unless_given() {
        let dir = std::env::temp_dir().join(format!("converge-as-applied-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app.yaml");
        std::fs::write(
            &file,
            "stack: app\nregion: eu-west-1\nvariables:\n  image_tag: unset\n  replicas: 1\nresources:\n  repo:\n    type: ecr.repository\n",
        )
        .unwrap();
        let args = StackRef { file, env: None, region: None, vars: Vec::new() };
        let applied = crate::state::applied::Applied {
            vars: [("image_tag", "abc123"), ("gone", "x")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
            ..Default::default()
        };
        // Not given: the last apply's; a variable the stack no longer has is
        // left out.
        let stack = as_applied(&args, load(&args, false).unwrap(), Some(&applied), false).unwrap();
        assert_eq!(stack.vars["image_tag"], "abc123");
        // Given by this command: its own.
        let given = StackRef { vars: vec![("image_tag".into(), "def456".into())], ..args.clone() };
        let stack = as_applied(&given, load(&given, false).unwrap(), Some(&applied), false).unwrap();
        assert_eq!(stack.vars["image_tag"], "def456");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
