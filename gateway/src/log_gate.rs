//! At most one log line per key (an API's operation) per interval, with the
//! number of lines left out since the last one: a backend that drifts from its
//! document on every response must not flood the log, and nobody should lose
//! track of how often it happens.
//!
//! Never: gate what is counted — metrics count every event; this only decides
//! which events are also logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an operation's response-contract mismatches are logged.
pub const MISMATCH_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Per operation: when a line was last logged, and the lines left out since.
type Windows = HashMap<String, (Instant, u64)>;

#[derive(Debug)]
pub struct LogGate {
    interval: Duration,
    /// API → operation → window.
    last: Mutex<HashMap<String, Windows>>,
}

impl LogGate {
    pub fn new(interval: Duration) -> LogGate {
        LogGate {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event of `(api, operation)` at `now` is logged: `Some(n)`
    /// with the `n` events left out since the last line, or `None` (left out,
    /// and counted for the next line).
    pub fn admit(&self, api: &str, operation: &str, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let ops = match last.get_mut(api) {
            Some(ops) => ops,
            None => last.entry(api.to_owned()).or_default(),
        };
        match ops.get_mut(operation) {
            None => {
                ops.insert(operation.to_owned(), (now, 0));
                Some(0)
            }
            Some((at, left_out)) if now.saturating_duration_since(*at) >= self.interval => {
                *at = now;
                Some(std::mem::take(left_out))
            }
            Some((_, left_out)) => {
                *left_out += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_operation_per_interval_with_the_count_left_out() {
        let gate = LogGate::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(gate.admit("a", "op", t0), Some(0));
        for i in 1..=3 {
            assert_eq!(gate.admit("a", "op", t0 + Duration::from_secs(i)), None);
        }
        // Another operation (or API) has its own interval.
        assert_eq!(
            gate.admit("a", "other", t0 + Duration::from_secs(1)),
            Some(0)
        );
        assert_eq!(gate.admit("b", "op", t0 + Duration::from_secs(1)), Some(0));
        // The next line says how many were left out, and starts a new interval.
        assert_eq!(gate.admit("a", "op", t0 + Duration::from_secs(10)), Some(3));
        assert_eq!(gate.admit("a", "op", t0 + Duration::from_secs(11)), None);
        assert_eq!(gate.admit("a", "op", t0 + Duration::from_secs(25)), Some(1));
    }
}
