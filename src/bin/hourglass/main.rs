//! The `hourglass` command-line tool: argument parsing and one library call per subcommand.

mod args;
mod cmd;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    if let Err(e) = cmd::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
