//! `converge validate`: every offline check, no AWS call.

use super::StackArgs;
use crate::printer::Printer;

pub fn run(args: StackArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.to_run(), false)?;
    printer.out(&format!(
        "{}: valid ({} resources, environment {}, region {}).",
        stack.file.display(),
        stack.resources.len(),
        stack.env,
        stack.region
    ));
    Ok(0)
}
