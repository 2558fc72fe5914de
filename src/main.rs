fn main() -> std::process::ExitCode {
    connect::cli::main()
}
