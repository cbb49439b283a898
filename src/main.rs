use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `regulab data list --json | head` into a write error;
    // the default action ends the process quietly when the reader goes away.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
