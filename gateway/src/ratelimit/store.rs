//! The per-key GCRA state of every rate limit, in one bounded table.
//!
//! GCRA (the generic cell rate algorithm) needs one number per key: the
//! *theoretical arrival time* (TAT) of the next request. A request at `now` is
//! allowed when `max(TAT, now) - now <= tau` (the burst tolerance), and then moves
//! TAT forward by the emission interval `T = period / requests`. A key whose TAT
//! is in the past holds exactly as much credit as a key never seen, so its slot
//! can be reused without changing any decision: idle keys cost nothing.
//!
//! Layout: 64 shards (a lock each, cache-line aligned), each a set-associative
//! table of 8-slot buckets with two-choice hashing (a key lives in one of two
//! buckets, and goes into the emptier). A slot is 16 bytes: a 64-bit keyed hash
//! of (scope, key) and the TAT in nanoseconds since the store's epoch; the key
//! itself is never stored. A shard starts with one bucket and doubles when both
//! of a new key's buckets are full of live keys, up to its share of `max_keys`;
//! doubling splits each bucket in two, so it never loses a key. At the cap, a new
//! key takes the slot of the live key in its two buckets that is closest to fully
//! replenished (the smallest TAT), which is the state whose loss changes the
//! least, and the eviction is counted. Every operation touches at most two
//! buckets (four cache lines) under one shard lock: O(1), whatever the number of
//! keys.
//!
//! The hash is SipHash with a per-process random key, so clients cannot aim many
//! keys at one bucket. Two keys colliding on all 64 bits (about 1 in 10^7 with a
//! million live keys) would share one budget; that is accepted.
//!
//! Never: grow past the configured capacity, allocate on the request path except
//! when a shard doubles, hold a lock across anything but arithmetic on one
//! bucket, or keep the key text (header values, consumer names) in memory.

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Instant;

use crate::metrics::StoreCounters;

/// Slots per bucket: 8 × 16 bytes = two cache lines.
const WAYS: usize = 8;
const SHARDS: usize = 64;
const SHARD_BITS: u32 = 6;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// Keyed hash of (scope, key); 0 marks an empty slot.
    key: u64,
    /// Theoretical arrival time, nanoseconds since the store's epoch.
    tat: u64,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    slots: [Slot; WAYS],
}

struct Table {
    /// Power-of-two length, at most `max_buckets`.
    buckets: Vec<Bucket>,
}

/// The two buckets a key may live in ("two-choice" hashing keeps buckets evenly
/// filled, so the table reaches high load before it has to evict).
fn choices(key: u64, len: usize) -> (usize, usize) {
    let mask = len - 1;
    (key as usize & mask, (key >> 32) as usize & mask)
}

impl Table {
    fn find(&mut self, key: u64) -> Option<&mut Slot> {
        let (a, b) = choices(key, self.buckets.len());
        let i = [a, b].into_iter().find_map(|bi| {
            self.buckets[bi]
                .slots
                .iter()
                .position(|s| s.key == key)
                .map(|si| (bi, si))
        });
        i.map(|(bi, si)| &mut self.buckets[bi].slots[si])
    }
}

/// A shard on its own cache lines, so two shards' locks never share one.
#[repr(align(128))]
struct Shard {
    table: Mutex<Table>,
}

/// A snapshot of [`StoreCounters`] plus the fixed capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub keys: u64,
    pub capacity: u64,
    pub bytes: u64,
    /// Bytes the store would use at capacity.
    pub max_bytes: u64,
    pub evictions: u64,
}

/// What one GCRA step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Allowed; the key's new TAT minus now, in nanoseconds (at most `tau + t`).
    Allowed { debt: u64 },
    /// Refused; the key's TAT minus now (so `debt - tau` until the next request
    /// would pass).
    Refused { debt: u64 },
}

/// GCRA parameters of one policy, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Emission interval: period / requests.
    pub t: u64,
    /// Burst tolerance: t × (burst − 1).
    pub tau: u64,
}

impl Gcra {
    pub fn new(requests: u64, period_ns: u64, burst: u64) -> Gcra {
        let t = (period_ns / requests.max(1)).max(1);
        Gcra {
            t,
            tau: t.saturating_mul(burst.max(1) - 1),
        }
    }
}

/// The table of all rate-limit state.
pub struct KeyStore {
    shards: Box<[Shard]>,
    max_buckets: usize,
    hasher: std::hash::RandomState,
    epoch: Instant,
    counters: StoreCounters,
}

impl KeyStore {
    /// A store for at most `max_keys` keys (rounded up to a power of two).
    pub fn new(max_keys: usize, counters: StoreCounters) -> KeyStore {
        let per_shard = max_keys.div_ceil(SHARDS * WAYS).max(1);
        let max_buckets = per_shard.next_power_of_two();
        let shards: Box<[Shard]> = (0..SHARDS)
            .map(|_| Shard {
                table: Mutex::new(Table {
                    buckets: vec![Bucket::default(); 1],
                }),
            })
            .collect();
        counters
            .bytes
            .set(i64::try_from(SHARDS * std::mem::size_of::<Bucket>()).unwrap_or(i64::MAX));
        KeyStore {
            shards,
            max_buckets,
            hasher: std::hash::RandomState::new(),
            epoch: Instant::now(),
            counters,
        }
    }

    /// The most keys the store holds.
    pub fn capacity(&self) -> u64 {
        (SHARDS * self.max_buckets * WAYS) as u64
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            keys: u64::try_from(self.counters.keys.get()).unwrap_or(0),
            capacity: self.capacity(),
            bytes: u64::try_from(self.counters.bytes.get()).unwrap_or(0),
            max_bytes: self.capacity() * std::mem::size_of::<Slot>() as u64,
            evictions: self.counters.evictions.get(),
        }
    }

    /// The key for `bytes` in `scope` (a scope is one attachment of a policy).
    pub fn hash(&self, scope: u32, tag: u8, bytes: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u32(scope);
        h.write_u8(tag);
        h.write(bytes);
        h.finish().max(1)
    }

    /// Nanoseconds since the store's epoch.
    pub fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key >> (64 - SHARD_BITS)) as usize]
    }

    /// One GCRA step for `key` at `now` (from [`KeyStore::nanos`]).
    pub fn acquire(&self, key: u64, now: u64, g: Gcra) -> Step {
        let shard = self.shard(key);
        let mut table = shard.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = table.find(key) {
            let tat = slot.tat.max(now);
            let debt = tat - now;
            if debt > g.tau {
                return Step::Refused { debt };
            }
            slot.tat = tat + g.t;
            return Step::Allowed { debt: debt + g.t };
        }
        // A key not present has full credit: always allowed.
        self.insert(&mut table, key, now, now + g.t);
        Step::Allowed { debt: g.t }
    }

    /// Gives back one request taken by [`KeyStore::acquire`] (when a later policy
    /// refused the request, so it must not count).
    pub fn refund(&self, key: u64, g: Gcra) {
        let shard = self.shard(key);
        let mut table = shard.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = table.find(key) {
            slot.tat = slot.tat.saturating_sub(g.t);
        }
    }

    fn insert(&self, table: &mut Table, key: u64, now: u64, tat: u64) {
        let reusable = |s: &Slot| s.key == 0 || s.tat <= now;
        loop {
            let (a, b) = choices(key, table.buckets.len());
            let free = |i: usize| {
                table.buckets[i]
                    .slots
                    .iter()
                    .filter(|s| reusable(s))
                    .count()
            };
            let (free_a, free_b) = (free(a), free(b));
            if free_a > 0 || free_b > 0 {
                // Two choices, the emptier wins: buckets fill evenly.
                let i = if free_a >= free_b { a } else { b };
                let slot = table.buckets[i]
                    .slots
                    .iter_mut()
                    .find(|s| reusable(s))
                    .expect("counted a free slot");
                if slot.key == 0 {
                    self.counters.keys.inc();
                }
                *slot = Slot { key, tat };
                return;
            }
            if table.buckets.len() < self.max_buckets {
                self.grow(table, now);
                continue;
            }
            // Full: replace the live key closest to full credit.
            let (bi, si) = [a, b]
                .into_iter()
                .flat_map(|bi| (0..WAYS).map(move |si| (bi, si)))
                .min_by_key(|&(bi, si)| table.buckets[bi].slots[si].tat)
                .expect("buckets have slots");
            table.buckets[bi].slots[si] = Slot { key, tat };
            self.counters.evictions.inc();
            return;
        }
    }

    /// Doubles a shard's table; bucket `i` splits into `i` and `i + len` (for
    /// either choice), dropping keys that have fully replenished.
    fn grow(&self, table: &mut Table, now: u64) {
        let old = table.buckets.len();
        let new_len = old * 2;
        let mut buckets = vec![Bucket::default(); new_len];
        let mut dropped = 0i64;
        for (i, b) in table.buckets.iter().enumerate() {
            let (mut lo, mut hi) = (0, 0);
            for s in b.slots.iter().filter(|s| s.key != 0) {
                if s.tat <= now {
                    dropped += 1;
                    continue;
                }
                // Which choice put it here decides where it goes.
                let (a, _) = choices(s.key, old);
                let (na, nb) = choices(s.key, new_len);
                let to = if a == i { na } else { nb };
                if to == i {
                    buckets[i].slots[lo] = *s;
                    lo += 1;
                } else {
                    buckets[to].slots[hi] = *s;
                    hi += 1;
                }
            }
        }
        table.buckets = buckets;
        self.counters.keys.dec_by(dropped);
        self.counters.bytes.inc_by(
            i64::try_from((new_len - old) * std::mem::size_of::<Bucket>()).unwrap_or(i64::MAX),
        );
    }

    /// Empties every slot whose key has fully replenished (for the idle-key gauge;
    /// decisions do not depend on it). Returns how many were emptied.
    pub fn sweep(&self, now: Instant) -> u64 {
        let now = self.nanos(now);
        let mut total = 0u64;
        for shard in self.shards.iter() {
            let mut table = shard.table.lock().unwrap_or_else(|e| e.into_inner());
            let mut n = 0i64;
            for b in &mut table.buckets {
                for s in &mut b.slots {
                    if s.key != 0 && s.tat <= now {
                        *s = Slot::default();
                        n += 1;
                    }
                }
            }
            drop(table);
            self.counters.keys.dec_by(n);
            total += n as u64;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn gcra_allows_burst_then_the_rate() {
        let s = KeyStore::new(1024, StoreCounters::default());
        // 10 per second, burst 3.
        let g = Gcra::new(10, 1_000 * MS, 3);
        assert_eq!(g.t, 100 * MS);
        let k = s.hash(1, b'i', b"a");
        let now = 5_000 * MS;
        for _ in 0..3 {
            assert!(matches!(s.acquire(k, now, g), Step::Allowed { .. }));
        }
        let Step::Refused { debt } = s.acquire(k, now, g) else {
            panic!("fourth request at once must be refused");
        };
        assert_eq!(debt - g.tau, 100 * MS);
        // One interval later, exactly one more.
        assert!(matches!(
            s.acquire(k, now + 100 * MS, g),
            Step::Allowed { .. }
        ));
        assert!(matches!(
            s.acquire(k, now + 100 * MS, g),
            Step::Refused { .. }
        ));
        // Another key is independent; so is the same key in another scope.
        assert!(matches!(
            s.acquire(s.hash(1, b'i', b"b"), now, g),
            Step::Allowed { .. }
        ));
        assert!(matches!(
            s.acquire(s.hash(2, b'i', b"a"), now, g),
            Step::Allowed { .. }
        ));
        // A refund gives one back.
        s.refund(k, g);
        assert!(matches!(
            s.acquire(k, now + 100 * MS, g),
            Step::Allowed { .. }
        ));
    }

    #[test]
    fn exact_count_over_time() {
        let s = KeyStore::new(1024, StoreCounters::default());
        let g = Gcra::new(100, 1_000 * MS, 10);
        let k = s.hash(0, 0, b"k");
        let mut allowed = 0;
        // A request every millisecond for 2 seconds.
        for ms in 0..2_000 {
            if matches!(s.acquire(k, ms * MS, g), Step::Allowed { .. }) {
                allowed += 1;
            }
        }
        // 100/s for 2 s plus a burst of 10 (the first interval is in the burst).
        assert!((209..=211).contains(&allowed), "{allowed}");
    }

    #[test]
    fn a_million_keys_stay_within_the_cap() {
        let counters = StoreCounters::default();
        let s = KeyStore::new(50_000, counters);
        let g = Gcra::new(1, 3_600_000 * MS, 1);
        for i in 0..1_000_000u32 {
            let k = s.hash(0, b'i', &i.to_be_bytes());
            s.acquire(k, u64::from(i), g);
        }
        let st = s.stats();
        assert_eq!(st.capacity, 65_536);
        assert!(st.keys <= st.capacity, "{st:?}");
        assert!(st.bytes <= st.max_bytes, "{st:?}");
        assert!(st.evictions >= 1_000_000 - st.capacity, "{st:?}");
        // Full table: at most 16 bytes a key.
        assert!(st.bytes / st.keys <= 17, "{st:?}");
    }

    #[test]
    fn idle_keys_are_reused_and_swept() {
        let s = KeyStore::new(10_000, StoreCounters::default());
        let g = Gcra::new(1, 10 * MS, 1);
        let start = s.epoch;
        for i in 0..5_000u32 {
            s.acquire(s.hash(0, 0, &i.to_be_bytes()), 0, g);
        }
        assert_eq!(s.stats().keys, 5_000);
        // Later, fully replenished: new keys reuse the slots, nothing is evicted.
        for i in 5_000..10_000u32 {
            s.acquire(s.hash(0, 0, &i.to_be_bytes()), 20 * MS, g);
        }
        assert_eq!(s.stats().evictions, 0);
        let swept = s.sweep(start + std::time::Duration::from_secs(1));
        assert_eq!(s.stats().keys, 0, "swept {swept}");
    }

    #[test]
    fn concurrent_acquires_never_overshoot() {
        let s = std::sync::Arc::new(KeyStore::new(1024, StoreCounters::default()));
        // 1000 per hour, burst 100: only the burst can pass in this test.
        let g = Gcra::new(1000, 3_600_000 * MS, 100);
        let k = s.hash(0, 0, b"shared");
        let allowed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, allowed) = (s.clone(), allowed.clone());
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        if matches!(s.acquire(k, 1, g), Step::Allowed { .. }) {
                            allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(allowed.load(std::sync::atomic::Ordering::Relaxed), 100);
    }
}
