//! `kernel --iterations N [--seed S]`: runs the integer-mixing kernel and
//! prints its result, so a run under the sandbox can be checked against the
//! same kernel compiled natively.

use std::process::ExitCode;

/// Iterations when none are given: about a second of work under the sandbox.
const ITERATIONS_DEFAULT: u64 = 100_000_000;

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok((iterations, seed)) => {
            let result = kernel::mix(seed, iterations);
            println!("kernel: iterations={iterations} seed={seed} result={result:#018x}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("kernel: {message}\nusage: kernel [--iterations N] [--seed S]");
            ExitCode::from(2)
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(u64, u64), String> {
    let mut iterations = ITERATIONS_DEFAULT;
    let mut seed = 0;
    while let Some(flag) = args.next() {
        let target = match flag.as_str() {
            "--iterations" => &mut iterations,
            "--seed" => &mut seed,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        *target = value
            .parse()
            .map_err(|_| format!("{flag} {value:?} is not a whole number"))?;
    }
    Ok((iterations, seed))
}
