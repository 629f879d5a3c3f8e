//! `tenet`: continuous trust governance. A thin binary over the pipeline
//! crates; each subcommand lives in `cli/`.

#![deny(clippy::print_stdout)]

mod cli;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::run()
}
