use clap::Parser;

fn main() {
    let cli = kiln::cli::Cli::parse();
    std::process::exit(kiln::cli::run(cli));
}
