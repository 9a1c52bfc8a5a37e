//! Human units in `mgw.yaml`: durations (`10s`, `500ms`) and sizes (`64KiB`, `10MiB`).
//!
//! The bundle stores plain milliseconds and bytes; people write units. These
//! parsers are strict on purpose (a bare `10` is refused, since nobody can tell
//! whether it meant seconds or milliseconds) and their messages say what is valid.
//! They never round silently: a duration that is not a whole number of
//! milliseconds is an error.

use std::time::Duration;

/// Parses a duration such as `10s`, `500ms`, `1m 30s` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("expected a duration such as `10s` or `500ms`".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{t}` needs a unit, such as `{t}s` or `{t}ms`"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("`{t}` is not a duration ({e}); write for example `10s`, `500ms` or `2m`")
    })
}

/// A duration as whole milliseconds, as the bundle stores it.
pub fn duration_ms(text: &str) -> Result<u64, String> {
    let d = parse_duration(text)?;
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "`{}` is not a whole number of milliseconds",
            text.trim()
        ));
    }
    u64::try_from(d.as_millis()).map_err(|_| format!("`{}` is too long", text.trim()))
}

/// Parses a size: bytes as a bare integer, or an integer with a unit: `B`, `KB`,
/// `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024), case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let hint = "write a whole number of bytes or a size such as `64KiB`, `10MiB` or `1GB`";
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!("`{t}` is not a size; {hint}"));
    }
    let n: u64 = num.parse().map_err(|_| format!("`{t}` is too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        other if other.starts_with('.') => {
            return Err(format!("`{t}`: fractions are not supported; {hint}"));
        }
        _ => return Err(format!("`{t}` has an unknown unit; {hint}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{t}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("10s").unwrap(), 10_000);
        assert_eq!(duration_ms("500ms").unwrap(), 500);
        assert_eq!(duration_ms("1m 30s").unwrap(), 90_000);
        assert!(duration_ms("10").unwrap_err().contains("needs a unit"));
        assert!(duration_ms("1us").unwrap_err().contains("whole number"));
        assert!(
            duration_ms("ten seconds")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(duration_ms("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("10 mib").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("512B").unwrap(), 512);
        assert!(parse_size("1.5MiB").unwrap_err().contains("fractions"));
        assert!(parse_size("10XB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_size("-1").is_err());
        assert!(
            parse_size("99999999999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_size("9999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
