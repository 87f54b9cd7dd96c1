//! The `mailvault` binary: a thin command-line layer over the library.

mod cli;

fn main() -> std::process::ExitCode {
    // Before anything is created: the archive, exports and status files are private.
    mailvault::private::restrict_umask();
    cli::main()
}
