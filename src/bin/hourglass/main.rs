//! The `hourglass` command-line tool: argument parsing and one library call per subcommand.
// The library never prints; this binary is the one place that does, through `outln!`/`out!`
// (stdout: a write error is returned, a closed pipe ends the command quietly) and `note!`
// (stderr: messages for people, whose loss cannot be reported anywhere, so a failed write is
// ignored instead of panicking). `println!`/`eprintln!` panic on a write error and are denied.

/// `eprintln!` that never panics: a closed or full stderr loses the message, nothing else.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
mod cmd;
mod errors;
mod signals;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `hourglass train --resume PATH` alone replays the checkpointed run's arguments.
    let argv = match cmd::session::command_line(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            note!("error: {}", errors::render(&e));
            return ExitCode::from(2);
        }
    };
    let cli = args::Cli::parse_from(argv);
    signals::install();
    // The Parquet reader turns the `parquet` crate's panics on damaged files into errors;
    // those caught panics are not bugs to report.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !hourglass::data::parquet::catching_panics() {
            report(info);
        }
    }));
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `hourglass score … | head`: the reader has what it wanted.
        Err(e) if errors::is_broken_pipe(&e) => ExitCode::SUCCESS,
        // A signal stopped training after the checkpoint and the model were saved.
        Err(e) if e.is::<signals::Interrupted>() => {
            note!("{e}");
            let sig = e.downcast_ref::<signals::Interrupted>().map_or(0, |i| i.0);
            ExitCode::from(u8::try_from(128 + sig).unwrap_or(1))
        }
        Err(e) => {
            note!("error: {}", errors::render(&e));
            ExitCode::from(2)
        }
    }
}
