use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = quorum::cli::Cli::parse();
    quorum::cli::init_tracing();
    match quorum::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
