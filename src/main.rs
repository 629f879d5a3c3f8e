//! `tenet`: continuous trust governance. A thin binary over the pipeline
//! crates; each subcommand lives in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
