//! `converge import`: take over an existing object that no stack owns as
//! one of the spec's resources.
//!
//! Identity is in the tags, so importing is tagging: for kinds recognised by
//! name (buckets, databases, groups …) the resource is adopted for this run
//! as `adopt: true` would; for EC2 kinds, found by their tags only, the
//! object named by its id first gets the three identity tags, is read back
//! as the resource's kind, and loses them again if it is not one. Either
//! way the plan of that one resource is shown (the tags it gains, any
//! setting that differs from the spec) and applied on confirmation, under
//! the stack's lock. An object tagged for another stack, environment or
//! resource is never taken.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, Tag};

use crate::aws::Aws;
use crate::aws::sdk;
use crate::kinds::{ImportBy, TAG_ENV, TAG_RESOURCE, TAG_STACK};
use crate::plan::{Action, text};
use crate::printer::Printer;
use crate::spec::Stack;

/// What `converge import` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub stack: super::StackRef,
    pub aws: super::Endpoint,
    /// The spec's resource that takes the object over.
    pub resource: String,
    /// The object's id (EC2 kinds, found by tags, not names).
    pub id: Option<String>,
    pub auto_approve: bool,
    pub lock: super::Locking,
}

pub async fn run(args: Options, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.stack, true)?;
    let aws = crate::run::session::connect(&stack, &args.aws).await;
    let home = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let mut stack = crate::run::load::with_inputs(&args.stack, stack, true, &aws, &home).await?;
    let name = args.resource.clone();
    let Some(r) = stack.resources.get_mut(&name) else {
        let help = crate::spec::help_for(&name, stack.resources.keys().map(String::as_str)).unwrap_or_default();
        anyhow::bail!("no resource `{name}` in {}; {help}", stack.file.display());
    };
    let kind = r.kind;
    match (kind.import_by(), args.id.as_deref()) {
        (ImportBy::Never(why), _) => anyhow::bail!("`{name}` ({}) cannot be imported: {why}", kind.type_name()),
        (ImportBy::Name, Some(id)) if id != r.physical_name => anyhow::bail!(
            "`{name}` ({}) is found by its name, and the spec names it `{}`; to import `{id}`, set `name: {id}` on `{name}` first",
            kind.type_name(),
            r.physical_name
        ),
        (ImportBy::Name, _) => r.adopt = true,
        (ImportBy::Ec2Id, None) => anyhow::bail!(
            "`{name}` ({}) is found by its tags, not a name: give the object's id, e.g. `converge import {} --env {} {name} {}…`",
            kind.type_name(),
            args.stack.file.display(),
            stack.env,
            id_example(kind.type_name())
        ),
        (ImportBy::Ec2Id, Some(_)) => {}
    }
    let stop = crate::apply::Stop::from_signals()?;
    let held = crate::run::session::lock(&aws, &stack, &args.lock, "import", printer).await?;
    let result = locked(&aws, stack, &name, args.id.as_deref(), &args, &stop, printer).await;
    crate::run::session::unlock_after(held, printer).await?;
    result
}

fn id_example(kind: &str) -> &'static str {
    match kind {
        "ec2.vpc" => "vpc-",
        "ec2.subnet" => "subnet-",
        "ec2.security_group" => "sg-",
        "ec2.internet_gateway" => "igw-",
        "ec2.elastic_ip" => "eipalloc-",
        "ec2.nat_gateway" => "nat-",
        "ec2.route_table" => "rtb-",
        "ec2.vpc_endpoint" => "vpce-",
        "ec2.volume" => "vol-",
        "ec2.launch_template" => "lt-",
        _ => "",
    }
}

async fn locked(
    aws: &Aws,
    stack: Stack,
    name: &str,
    id: Option<&str>,
    args: &Options,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let kind = stack.resources[name].kind;
    let live = crate::run::session::before_changes(stop, async { Ok(crate::live::read(aws, &stack).await?) }).await?;
    // Found with this stack's tags (not merely by name, as `adopt` finds).
    let ours =
        |l: &crate::kinds::Live| l.tags.get(TAG_STACK) == Some(&stack.name) && l.tags.get(TAG_ENV) == Some(&stack.env);
    if let Some(l) = live.get(kind, name).filter(|l| ours(l)) {
        anyhow::bail!("`{name}` is already this stack's: {} ({}); nothing to import", l.id, kind.type_name());
    }
    let live = match (kind.import_by(), id) {
        (ImportBy::Ec2Id, Some(id)) => {
            tag_ec2(aws, &stack, name, id).await?;
            let live = crate::live::read(aws, &stack).await?;
            if live.get(kind, name).is_none_or(|l| l.id != id) {
                untag_ec2(aws, id).await?;
                anyhow::bail!(
                    "`{id}` is not a {} (or does not exist); its tags were left as they were",
                    kind.type_name()
                );
            }
            live
        }
        _ => live,
    };
    // Only this resource is planned: other resources' conflicts are for
    // their own import or `adopt:`.
    let mut live = live;
    live.conflicts.retain(|c| c.resource == name);
    let targets = BTreeSet::from([name.to_string()]);
    let mut plan = crate::plan::plan(&stack, &live, Some(&targets))?;
    plan.resources.retain(|rc| rc.name == name);
    match plan.resources.first().map(|rc| rc.action) {
        Some(Action::Create) | None => anyhow::bail!(
            "no {} named `{}` exists to import (the spec's `name:` for `{name}`)",
            kind.type_name(),
            stack.resources[name].physical_name
        ),
        _ => {}
    }
    printer.out(text::render(&plan, printer).trim_end());
    if !plan.has_changes() {
        printer.out(&format!("Imported: `{name}` is this stack's."));
        return Ok(0);
    }
    printer.out("");
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let opts = crate::run::execute::ExecOptions {
        auto_approve: args.auto_approve,
        parallelism: 1,
        stop,
        store: &store,
        trace: None,
        command: "import",
        commit: crate::state::lock::commit(),
        started_ms: None,
        destroy: false,
    };
    crate::run::execute::execute_plan(aws, stack, &live, plan, &args.lock.allow_destroy, &opts, printer).await
}

/// Gives EC2 object `id` the identity tags of resource `name`, unless it
/// carries another owner's.
async fn tag_ec2(aws: &Aws, stack: &Stack, name: &str, id: &str) -> anyhow::Result<()> {
    let out = aws
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(id).build())
        .send()
        .await
        .map_err(sdk("ec2:DescribeTags"))?;
    let tags: BTreeMap<&str, &str> =
        out.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))).collect();
    if let (Some(s), Some(e)) = (tags.get(TAG_STACK), tags.get(TAG_ENV)) {
        let other = tags.get(TAG_RESOURCE).copied().unwrap_or("?");
        anyhow::bail!(
            "`{id}` belongs to stack {s}, environment {e} (its resource `{other}`); converge never takes another stack's or environment's objects"
        );
    }
    let identity = [(TAG_STACK, stack.name.as_str()), (TAG_ENV, stack.env.as_str()), (TAG_RESOURCE, name)];
    aws.ec2
        .create_tags()
        .resources(id)
        .set_tags(Some(identity.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
        .send()
        .await
        .map_err(sdk("ec2:CreateTags"))?;
    Ok(())
}

/// Takes the identity tags off again.
async fn untag_ec2(aws: &Aws, id: &str) -> anyhow::Result<()> {
    aws.ec2
        .delete_tags()
        .resources(id)
        .set_tags(Some([TAG_STACK, TAG_ENV, TAG_RESOURCE].iter().map(|k| Tag::builder().key(*k).build()).collect()))
        .send()
        .await
        .map_err(sdk("ec2:DeleteTags"))?;
    Ok(())
}
