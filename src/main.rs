use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    regulab::experiment::install_panic_hook();
    let cli = regulab::cli::Cli::parse();
    match regulab::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("regulab: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
