//! Errors and the exit statuses they map to, shared by every subcommand.
//!
//! The exit statuses (BSD `sysexits.h` for the errors):
//! - 0, 1, 2, 3: the run's or the check's verdict (ok, violation,
//!   undecided, liveness failure);
//! - 4: `replay` could not reproduce the pinned trace hash (it differs, or
//!   the file pins none);
//! - 5: a scenario expects a failure (`expect = "violation"` or
//!   `"liveness"`) and the run passed: a failed expectation;
//! - 64: a usage error (bad flag values, a malformed or unknown scenario, a
//!   missing file named on the command line, shards that do not add up);
//! - 65: bad input data (a history or summary that cannot be read as one);
//! - 70: an internal error (a file that cannot be written, a panic).

use std::fmt;

/// Exit status: `replay` did not reproduce the pinned trace hash.
pub const EXIT_REPLAY_DIFFERS: u8 = 4;
/// Exit status: a scenario expected a failure and the run passed.
pub const EXIT_EXPECTATION_FAILED: u8 = 5;
/// Exit status for a usage error (clap's own would be 2, which means
/// "undecided" here).
pub const EXIT_USAGE: u8 = 64;
/// Exit status for bad input data.
pub const EXIT_INPUT: u8 = 65;
/// Exit status for an internal error (a file that cannot be written, say).
pub const EXIT_INTERNAL: u8 = 70;

/// An error of a subcommand, with the exit status it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The user asked for something that cannot be done as asked.
    Usage(String),
    /// An input file is not what it should be.
    Input(String),
    /// Something went wrong inside (a file that cannot be written).
    Internal(String),
}

impl Error {
    /// The exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Input(_) => EXIT_INPUT,
            Error::Internal(_) => EXIT_INTERNAL,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Error::Usage(m) | Error::Input(m) | Error::Internal(m) => m,
        }
    }

    /// The error's kind, as named in `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Input(_) => "input",
            Error::Internal(_) => "internal",
        }
    }

    /// The error as one JSON object (what `--json` prints on stdout).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "error": self.message(),
            "kind": self.kind(),
            "exit_code": self.exit_code(),
        })
        .to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A plain string error is internal unless said otherwise: validation
/// errors are marked [`Error::Usage`] where they arise.
impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Internal(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Internal(message.to_string())
    }
}
