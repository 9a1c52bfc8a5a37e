//! A bounded cache of checked credentials, keyed by a hash of the credential.
//!
//! A client that repeats its token pays for the signature check (or the
//! introspection call, or the bcrypt comparison) once. Entries expire with the
//! credential; when the cache is full, expired entries go first and then
//! everything, so memory stays bounded whatever the number of distinct tokens.
//! It never stores a credential itself, only its sha256.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct TokenCache<V> {
    capacity: usize,
    map: Mutex<HashMap<[u8; 32], (V, Instant)>>,
}

impl<V: Clone> TokenCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((v, until)) if Instant::now() < *until => Some(v.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, key: [u8; 32], value: V, until: Instant) {
        if self.capacity == 0 || until <= Instant::now() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (value, until));
    }

    /// Forgets everything (the secret file behind the entries changed).
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expires_and_stays_bounded() {
        let c = TokenCache::new(2);
        let later = Instant::now() + Duration::from_secs(60);
        c.insert([1; 32], 1, later);
        c.insert([2; 32], 2, later);
        assert_eq!(c.get(&[1; 32]), Some(1));
        c.insert([3; 32], 3, later);
        assert!(c.len() <= 2);
        assert_eq!(c.get(&[3; 32]), Some(3));
        c.insert([4; 32], 4, Instant::now());
        assert_eq!(c.get(&[4; 32]), None);
    }
}
