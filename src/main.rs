use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = inquiryd::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("inquiryd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(inquiryd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inquiryd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
