use clap::Parser;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match kiln::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                kiln::cli::usage_exit_code(&args)
            } else {
                0
            };
            // A closed stdout (`kiln --help | head`) is no failure of ours.
            let _ = e.print();
            std::process::exit(code)
        }
    };
    std::process::exit(kiln::cli::run(cli));
}
