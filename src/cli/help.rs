//! `--help` for the trainers shows each flag's default from the configuration's own
//! defaults ([`config::default_values`]), per trainer, so no help text copies a default by
//! hand.

use crate::config::{self, ModelKind};
use clap::{Command, CommandFactory};

/// The command line, with the trainers' defaults in their help.
pub fn command() -> Command {
    let mut command = super::Cli::command();
    for trainer in [ModelKind::Mf, ModelKind::Mlp] {
        command = command.mut_subcommand(trainer.to_string(), |sub| with_defaults(sub, trainer));
    }
    command
}

fn with_defaults(mut command: Command, trainer: ModelKind) -> Command {
    let defaults = config::default_values(trainer);
    let flags: Vec<(String, String)> = command
        .get_arguments()
        .filter_map(|arg| Some((arg.get_id().to_string(), arg.get_long()?.to_string())))
        .collect();
    for (id, long) in flags {
        let Some(default) = defaults.get(&long.replace('-', "_")) else {
            continue;
        };
        let shown = format!("[default: {default}]");
        command = command.mut_arg(id, |arg| {
            let help = arg.get_help().map(|h| format!("{h} {shown}"));
            let long_help = arg.get_long_help().map(|h| format!("{h} {shown}"));
            let arg = match help {
                Some(help) => arg.help(help),
                None => arg,
            };
            match long_help {
                Some(long_help) => arg.long_help(long_help),
                None => arg,
            }
        });
    }
    command
}
