//! `converge validate`: every offline check, no AWS call.

use super::StackArgs;
use crate::printer::Printer;

pub fn run(args: StackArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args, false)?;
    printer.out(&format!(
        "{}: valid ({} resources, environment {}, region {}).",
        stack.file.display(),
        stack.resources.len(),
        stack.env,
        stack.region
    ));
    Ok(0)
}
