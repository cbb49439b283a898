use clap::FromArgMatches;
use regulab::cli::{Cli, Exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    // A run outlives its console: with SIGPIPE ignored, a reader that goes away
    // (`regulab sweep ... | head -5`) is a write error that regulab's console writers drop
    // (util::write_stdout), so training goes on and its documents, lock and checkpoint are
    // settled as usual. Rust ignores SIGPIPE already; this says so where it matters.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    regulab::experiment::install_panic_hook();
    let argv: Vec<String> = std::env::args().collect();
    let matches = match regulab::cli::command().try_get_matches_from(&argv) {
        Ok(matches) => matches,
        Err(error) => return usage_error(error),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    match regulab::cli::run(cli, &matches, argv) {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Failure) => ExitCode::FAILURE,
        Ok(Exit::Signal(signal)) => ExitCode::from(regulab::interrupt::exit_code(signal)),
        Err(error) => {
            say(format_args!("regulab: error: {error:#}"));
            if error.downcast_ref::<regulab::cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Help and version go to stdout as clap formats them; a usage error is one line.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = error.to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // clap lists what is missing on the lines after "...were not provided:"; one line
    // must still say which argument it is.
    if first.ends_with(':') {
        let named: Vec<&str> = lines
            .take_while(|l| l.starts_with(' '))
            .map(str::trim)
            .collect();
        first = format!("{} {}", first, named.join(", "));
    }
    // A misspelled flag gets the suggestion a misspelled config key gets.
    if error.kind() == ErrorKind::UnknownArgument {
        if let Some(clap::error::ContextValue::String(arg)) =
            error.get(clap::error::ContextKind::InvalidArg)
        {
            let name = arg.trim_start_matches('-');
            let name = name.split('=').next().unwrap_or(name);
            if let Some(known) = regulab::config::closest_key(name) {
                first += &format!(" (did you mean --{}?)", known.replace('_', "-"));
            }
        }
    }
    say(format_args!("regulab: error: {first} (see --help)"));
    ExitCode::from(2)
}

/// One line on stderr, dropped if stderr is gone (`eprintln!` would panic).
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
