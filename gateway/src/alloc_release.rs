//! Giving start-up's freed memory back to the OS once the gateway is ready.
//!
//! Loading the bundle and building the pipeline frees most of what it
//! allocates (the bundle's text and wire types, builders, validators). mimalloc
//! returns freed pages to the OS only when it is called again at least
//! `purge_delay` (1 s) later; an idle gateway never calls it, so those pages
//! would stay resident for as long as nothing is served (about 1 MiB with 1,000
//! routes: BENCHMARKS.md, "Idle memory, sixth wave"). One forced collection
//! after start returns them at once; the purge delay is left as it is for
//! everything after (purging on every free would cost the request path).
//!
//! The only `unsafe` of the workspace: an FFI call with no arguments to
//! borrow, made once.

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
