//! Reading a file until its damage is believed: a bit flipped on the way
//! from the medium (a transient read fault) reads differently the next time,
//! damage on the medium reads the same every time.
//!
//! One repeat is not enough: on a small file, two reads can flip the very
//! same bit by chance (the 3,000-seed sweep of session 2 met it once, on a
//! 102-byte log: 1 chance in 816 per pair of flipped reads). Damage is
//! believed after [`CONFIRMING_READS`] identical reads; reads that keep
//! differing are an I/O error, which says nothing about what is on disk.

use crate::disk::DiskError;
use crate::wal::WalError;

/// How many identical reads of a damaged file make its damage believed.
pub const CONFIRMING_READS: u32 = 3;

/// The most reads of one file before giving up as an I/O error.
pub const MAX_READ_ATTEMPTS: u32 = 8;

/// Reads a file with `read` and checks it with `check`, reading again while
/// the check fails on bytes not yet read [`CONFIRMING_READS`] times in a
/// row. Returns what `check` returned on the first good read, its error
/// once the damage is confirmed, or an I/O error naming `name` when the
/// reads never settle.
pub(crate) fn read_checked<T>(
    name: &str,
    mut read: impl FnMut() -> Result<Vec<u8>, WalError>,
    mut check: impl FnMut(&[u8]) -> Result<T, WalError>,
) -> Result<T, WalError> {
    let mut buf = read()?;
    let (mut attempts, mut same) = (1, 1);
    loop {
        let damage = match check(&buf) {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        loop {
            if same >= CONFIRMING_READS {
                return Err(damage);
            }
            if attempts >= MAX_READ_ATTEMPTS {
                return Err(WalError::Disk(DiskError::Io(format!(
                    "{attempts} reads of {name} disagree"
                ))));
            }
            attempts += 1;
            let again = read()?;
            if again == buf {
                same += 1;
            } else {
                (buf, same) = (again, 1);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(reads: &[&[u8]]) -> (Result<u8, WalError>, usize) {
        let mut next = 0;
        let result = read_checked(
            "f",
            || {
                let r = reads[next.min(reads.len() - 1)].to_vec();
                next += 1;
                Ok(r)
            },
            |b: &[u8]| {
                if b[0] == 0 {
                    Ok(b[1])
                } else {
                    Err(WalError::Corrupt {
                        file: "f".into(),
                        offset: 0,
                        reason: "bad".into(),
                    })
                }
            },
        );
        (result, next)
    }

    #[test]
    fn a_flip_repeated_twice_is_read_past_and_three_identical_reads_are_damage() {
        let (good, bad) = (&[0u8, 7][..], &[1u8, 7][..]);
        assert_eq!(run(&[bad, bad, good]).0.unwrap(), 7, "two same flips");
        assert_eq!(run(&[good]).1, 1, "a good read is read once");
        let (damaged, reads) = run(&[bad, bad, bad, good]);
        assert!(matches!(damaged, Err(WalError::Corrupt { .. })));
        assert_eq!(reads, 3);
        let flips: Vec<Vec<u8>> = (1..=9u8).map(|i| vec![i, 0]).collect();
        let flips: Vec<&[u8]> = flips.iter().map(|v| &v[..]).collect();
        let (unsettled, reads) = run(&flips);
        assert!(matches!(unsettled, Err(WalError::Disk(DiskError::Io(_)))));
        assert_eq!(reads, MAX_READ_ATTEMPTS as usize);
    }
}
