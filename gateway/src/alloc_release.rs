//! Keeping the allocator's idle footprint to what the gateway uses.
//!
//! Two calls, both for the static musl gateway (mimalloc is its global
//! allocator; elsewhere they are no-ops):
//! - [`configure`], first thing at start: mimalloc reserves its first arena
//!   at 1 GiB of address space on 64-bit, and the arena's bitmaps (one per
//!   size bin, sized for the whole reservation) cost about 0.14 MiB of
//!   resident memory whatever is allocated in it. A 64 MiB first arena holds
//!   an idle gateway many times over; mimalloc adds arenas as the heap grows
//!   (doubling their size every eight), so a busy gateway is not limited by
//!   it. `MIMALLOC_ARENA_RESERVE`, when set to another size, still wins.
//! - [`release_free_memory`] after the bundle is loaded and again when the
//!   gateway is ready: mimalloc returns freed pages to the OS only when it is
//!   called again at least `purge_delay` (1 s) later, which an idle gateway
//!   never does. Collecting once the bundle's text and wire form are dropped
//!   also means the pipeline built next gets fresh pages rather than pages the
//!   wire form had filled, of which one long-lived object would keep the
//!   whole 64 KiB resident. The purge delay is left as it is for everything
//!   after (purging on every free would cost the request path).
//!
//! BENCHMARKS.md, "Idle memory, sixth wave" and "… eighth wave", has the
//! measurements. The only `unsafe` of the workspace: FFI calls with plain
//! integer arguments, made at start.

/// mimalloc's `mi_option_arena_reserve` (`mimalloc.h`, v3; `libmimalloc-sys`
/// does not name it), in KiB.
#[cfg(all(target_env = "musl", not(feature = "system-alloc")))]
const MI_OPTION_ARENA_RESERVE: libmimalloc_sys::mi_option_t = 23;

/// mimalloc's own first reservation on 64-bit, in KiB (1 GiB).
#[cfg(all(target_env = "musl", not(feature = "system-alloc")))]
const DEFAULT_ARENA_RESERVE_KIB: std::ffi::c_long = 1024 * 1024;

/// The first arena's reservation, in KiB (64 MiB).
#[cfg(all(target_env = "musl", not(feature = "system-alloc")))]
const ARENA_RESERVE_KIB: std::ffi::c_long = 64 * 1024;

/// Sizes mimalloc's arenas for a small heap. Call before the first
/// allocation (the first arena is reserved then; called later, it only sizes
/// the arenas added after). A no-op unless mimalloc is the global allocator.
#[cfg(all(target_env = "musl", not(feature = "system-alloc")))]
#[allow(unsafe_code)]
pub fn configure() {
    // SAFETY: `mi_option_get` and `mi_option_set` read and store an integer
    // in mimalloc's option table; the option index is the one `mimalloc.h`
    // declares for the vendored version, and any value is valid for it.
    unsafe {
        // Still mimalloc's default: `MIMALLOC_ARENA_RESERVE` did not set it
        // (checked without `std::env`, which would allocate first).
        if libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_RESERVE) == DEFAULT_ARENA_RESERVE_KIB {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_RESERVE, ARENA_RESERVE_KIB);
        }
    }
}

/// Sizes mimalloc's arenas for a small heap. A no-op unless mimalloc is the
/// global allocator (the static musl gateway).
#[cfg(not(all(target_env = "musl", not(feature = "system-alloc"))))]
pub fn configure() {}

/// Returns the allocator's free pages to the OS. A no-op unless mimalloc is
/// the global allocator (the static musl gateway).
#[cfg(all(target_env = "musl", not(feature = "system-alloc")))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: `mi_collect` takes no pointer and touches only mimalloc's own
    // state, which it synchronises itself; any thread may call it at any time,
    // and when mimalloc is not the global allocator it only collects its own
    // (empty) heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Returns the allocator's free pages to the OS. A no-op unless mimalloc is
/// the global allocator (the static musl gateway).
#[cfg(not(all(target_env = "musl", not(feature = "system-alloc"))))]
pub fn release_free_memory() {}
