//! Upstream resilience: how the gateway behaves when an upstream misbehaves.
//!
//! Per upstream (an operation gets its own by naming another upstream):
//!
//! - **Concurrency cap** (`maxConcurrentRequests`): requests in flight, from
//!   sending until the response body ends; one more is answered `503` at once, so
//!   a slow upstream cannot pile up unbounded work in the gateway.
//! - **Circuit breaker**: after `consecutiveFailures` in a row, or a failure rate
//!   over a sliding window, it *opens*: requests are answered `503` at once,
//!   without touching the upstream, for `openMs`. Then it is *half-open*: up to
//!   `halfOpenRequests` probes go through; that many successes close it, one
//!   failure opens it again.
//! - **Passive health**: a URL that fails `consecutiveFailures` times in a row is
//!   ejected for `ejectionMs` and gets no traffic until then. If every URL is
//!   ejected, all are used again (a "panic" that keeps a flapping upstream
//!   reachable and leaves fast failing to the circuit breaker).
//! - **Active health checks** (optional): `GET path` on each URL's origin every
//!   `intervalMs`; `unhealthyThreshold` failures in a row take the URL out,
//!   `healthyThreshold` successes bring it back (and end any ejection).
//! - **Retry budget**: retries may add at most `budgetPercent` to the requests
//!   of the last 10 seconds (but `minRetriesPerSecond` are always allowed), so
//!   retries cannot multiply the load on an upstream that is already failing.
//!
//! A failure is a connect error, a timeout, a reset, or a `502`/`503`/`504` from
//! the upstream; other statuses are the API's answers, not failures.
//!
//! The closed-circuit fast path is a few relaxed atomics; locks are taken only on
//! failures and state changes. Never: block the request path on a health check,
//! keep a request waiting for a permit (the answer is an immediate `503`), or
//! count a client's own error (a body too large) against an upstream.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;

use crate::body::RequestBody;
use crate::bundle::{
    CircuitBreakerCfg, HealthCheckCfg, PassiveHealthCfg, RetryBudgetCfg, Target, UpstreamCfg,
};
use crate::metrics::{ResilienceMetrics, TargetMetrics};
use crate::upstream_tls::Connector;

/// Is this upstream status a failure of the upstream (not an answer of the API)?
pub fn is_failure_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// Where an upstream's resilience state reads the time: [`MonotonicClock`] in
/// the gateway; the unit tests below move a manual clock to drive the breaker's
/// cool-down, windows and ejections without sleeping. Statically dispatched, so
/// the seam costs the request path nothing.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
}

/// The gateway's clock: [`Instant::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Milliseconds since one upstream's state was created, on its clock.
struct Millis<C> {
    start: Instant,
    clock: C,
}

impl<C: Clock> Millis<C> {
    fn new(clock: C) -> Millis<C> {
        Millis {
            start: clock.now(),
            clock,
        }
    }

    fn ms(&self) -> u64 {
        self.ms_at(self.clock.now())
    }

    /// [`Millis::ms`] of an instant the caller has just read from this clock.
    fn ms_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

// ---------------------------------------------------------------------------
// Sliding window counters
// ---------------------------------------------------------------------------

const WINDOW_SLOTS: u64 = 10;

struct WindowSlot {
    /// Which tick (now / slot length) this slot currently counts.
    tick: AtomicU64,
    a: AtomicU32,
    b: AtomicU32,
}

/// Two counts over the last `window`, in ten slots (approximate at the edges,
/// which is all a breaker or a budget needs).
struct Window {
    slot_ms: u64,
    slots: [WindowSlot; WINDOW_SLOTS as usize],
}

impl Window {
    fn new(window: Duration) -> Window {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Window {
            slot_ms: (ms / WINDOW_SLOTS).max(1),
            slots: std::array::from_fn(|_| WindowSlot {
                tick: AtomicU64::new(0),
                a: AtomicU32::new(0),
                b: AtomicU32::new(0),
            }),
        }
    }

    fn slot(&self, now_ms: u64) -> &WindowSlot {
        let tick = now_ms / self.slot_ms + 1;
        let slot = &self.slots[(tick % WINDOW_SLOTS) as usize];
        let seen = slot.tick.load(Ordering::Relaxed);
        if seen != tick
            && slot
                .tick
                .compare_exchange(seen, tick, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            slot.a.store(0, Ordering::Relaxed);
            slot.b.store(0, Ordering::Relaxed);
        }
        slot
    }

    fn add(&self, now_ms: u64, a: u32, b: u32) {
        let slot = self.slot(now_ms);
        if a > 0 {
            slot.a.fetch_add(a, Ordering::Relaxed);
        }
        if b > 0 {
            slot.b.fetch_add(b, Ordering::Relaxed);
        }
    }

    /// Sums over the window ending now.
    fn sums(&self, now_ms: u64) -> (u64, u64) {
        let tick = now_ms / self.slot_ms + 1;
        let oldest = tick.saturating_sub(WINDOW_SLOTS - 1);
        self.slots
            .iter()
            .filter(|s| (oldest..=tick).contains(&s.tick.load(Ordering::Relaxed)))
            .fold((0, 0), |(a, b), s| {
                (
                    a + u64::from(s.a.load(Ordering::Relaxed)),
                    b + u64::from(s.b.load(Ordering::Relaxed)),
                )
            })
    }

    fn reset(&self) {
        for s in &self.slots {
            s.tick.store(0, Ordering::Relaxed);
            s.a.store(0, Ordering::Relaxed);
            s.b.store(0, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------

/// Breaker states, as the `mgw_upstream_circuit_state` gauge shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CircuitState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl CircuitState {
    fn from_u8(v: u8) -> CircuitState {
        match v {
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        }
    }
}

struct Breaker {
    cfg: CircuitBreakerCfg,
    state: AtomicU8,
    consecutive: AtomicU32,
    /// a: successes, b: failures.
    window: Window,
    /// Serializes state changes and the half-open bookkeeping below.
    lock: Mutex<HalfOpen>,
}

#[derive(Default)]
struct HalfOpen {
    opened_at_ms: u64,
    probes_in_flight: u32,
    probe_successes: u32,
}

// ---------------------------------------------------------------------------
// Per-URL health
// ---------------------------------------------------------------------------

/// Health of one upstream URL, shared with its active health checker.
pub struct TargetHealth {
    consecutive_failures: AtomicU32,
    /// Clock ms until which the URL is ejected; 0 when it is not.
    ejected_until_ms: AtomicU64,
    /// Cleared by active health checks (always set when there are none).
    active_healthy: AtomicBool,
    metrics: TargetMetrics,
}

impl TargetHealth {
    fn available<C: Clock>(&self, clock: &Millis<C>) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        if until != 0 {
            if until > clock.ms() {
                return false;
            }
            // The ejection is over: back in rotation.
            if self
                .ejected_until_ms
                .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.update_gauge();
            }
        }
        self.active_healthy.load(Ordering::Relaxed)
    }

    fn update_gauge(&self) {
        let up = self.ejected_until_ms.load(Ordering::Relaxed) == 0
            && self.active_healthy.load(Ordering::Relaxed);
        self.metrics.healthy.set(i64::from(up));
    }
}

// ---------------------------------------------------------------------------
// The per-upstream state
// ---------------------------------------------------------------------------

/// Why a request was answered without being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The breaker is open (or its probes are taken); retry after this long.
    CircuitOpen(Duration),
    /// `maxConcurrentRequests` requests are already in flight.
    Overloaded,
}

/// The resilience state of one upstream.
pub struct Resilience<C: Clock = MonotonicClock> {
    clock: Millis<C>,
    breaker: Option<Breaker>,
    passive: Option<PassiveHealthCfg>,
    targets: std::sync::Arc<[TargetHealth]>,
    max_concurrent: usize,
    in_flight: std::sync::Arc<AtomicUsize>,
    budget: RetryBudgetCfg,
    /// a: requests, b: retries.
    budget_window: Window,
    metrics: ResilienceMetrics,
}

/// Holds one request's place under the concurrency cap until dropped (the
/// pipeline keeps it until the response body ends).
pub struct ConcurrencyPermit {
    in_flight: std::sync::Arc<AtomicUsize>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

/// A request's admission by the breaker; report its result with
/// [`Resilience::finish`]. Dropped unreported (client gone), it frees its probe
/// slot without a verdict.
pub struct Admission<'a, C: Clock = MonotonicClock> {
    res: &'a Resilience<C>,
    probe: bool,
    done: bool,
}

impl<C: Clock> Drop for Admission<'_, C> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            if let Some(b) = &self.res.breaker {
                let mut h = b.lock.lock().unwrap_or_else(|e| e.into_inner());
                h.probes_in_flight = h.probes_in_flight.saturating_sub(1);
            }
        }
    }
}

impl Resilience {
    pub fn new(cfg: &UpstreamCfg, metrics: ResilienceMetrics) -> Resilience {
        Resilience::with_clock(cfg, metrics, MonotonicClock)
    }
}

impl<C: Clock> Resilience<C> {
    /// The state of one upstream, timed by `clock`.
    pub fn with_clock(cfg: &UpstreamCfg, metrics: ResilienceMetrics, clock: C) -> Resilience<C> {
        let targets: std::sync::Arc<[TargetHealth]> = cfg
            .targets
            .iter()
            .map(|t| {
                let m = metrics.target(&target_label(t));
                m.healthy.set(1);
                TargetHealth {
                    consecutive_failures: AtomicU32::new(0),
                    ejected_until_ms: AtomicU64::new(0),
                    active_healthy: AtomicBool::new(true),
                    metrics: m,
                }
            })
            .collect();
        let breaker = cfg.circuit_breaker.clone().map(|b| Breaker {
            window: Window::new(b.window),
            cfg: b,
            state: AtomicU8::new(CircuitState::Closed as u8),
            consecutive: AtomicU32::new(0),
            lock: Mutex::new(HalfOpen::default()),
        });
        metrics.circuit_state.set(0);
        Resilience {
            clock: Millis::new(clock),
            breaker,
            passive: cfg.passive_health.clone(),
            targets,
            max_concurrent: cfg.max_concurrent_requests,
            in_flight: std::sync::Arc::new(AtomicUsize::new(0)),
            budget: cfg.retry_budget,
            budget_window: Window::new(Duration::from_secs(10)),
            metrics,
        }
    }

    pub fn circuit_state(&self) -> CircuitState {
        self.breaker.as_ref().map_or(CircuitState::Closed, |b| {
            CircuitState::from_u8(b.state.load(Ordering::Acquire))
        })
    }

    /// Admits a request, or says why not. Counts it for the retry budget.
    pub fn admit(&self) -> Result<(Admission<'_, C>, ConcurrencyPermit), Rejection> {
        self.admit_at(self.clock.clock.now())
    }

    /// [`Resilience::admit`] at `now`, just read from the upstream's clock (the
    /// request path reads it once for this and the attempt's deadline).
    pub fn admit_at(
        &self,
        now: Instant,
    ) -> Result<(Admission<'_, C>, ConcurrencyPermit), Rejection> {
        let now = self.clock.ms_at(now);
        let admission = self.admit_breaker(now).inspect_err(|_| {
            self.metrics.rejected_circuit_open.inc();
        })?;
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if n >= self.max_concurrent {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.metrics.rejected_overloaded.inc();
            // `admission` drops here: a probe slot is freed without a verdict.
            return Err(Rejection::Overloaded);
        }
        self.metrics.in_flight.inc();
        self.budget_window.add(now, 1, 0);
        Ok((
            admission,
            ConcurrencyPermit {
                in_flight: self.in_flight.clone(),
                gauge: self.metrics.in_flight.clone(),
            },
        ))
    }

    fn admit_breaker(&self, now: u64) -> Result<Admission<'_, C>, Rejection> {
        let normal = Admission {
            res: self,
            probe: false,
            done: false,
        };
        let Some(b) = &self.breaker else {
            return Ok(normal);
        };
        if b.state.load(Ordering::Acquire) == CircuitState::Closed as u8 {
            return Ok(normal);
        }
        let mut h = b.lock.lock().unwrap_or_else(|e| e.into_inner());
        match CircuitState::from_u8(b.state.load(Ordering::Acquire)) {
            CircuitState::Closed => return Ok(normal),
            CircuitState::Open => {
                let open_ms = u64::try_from(b.cfg.open.as_millis()).unwrap_or(u64::MAX);
                let elapsed = now.saturating_sub(h.opened_at_ms);
                if elapsed < open_ms {
                    return Err(Rejection::CircuitOpen(Duration::from_millis(
                        open_ms - elapsed,
                    )));
                }
                self.set_state(b, CircuitState::HalfOpen);
                h.probes_in_flight = 0;
                h.probe_successes = 0;
            }
            CircuitState::HalfOpen => {}
        }
        if h.probes_in_flight < b.cfg.half_open_requests {
            h.probes_in_flight += 1;
            Ok(Admission {
                res: self,
                probe: true,
                done: false,
            })
        } else {
            // Probes are out; their results decide. Ask again shortly.
            Err(Rejection::CircuitOpen(Duration::from_secs(1)))
        }
    }

    fn set_state(&self, b: &Breaker, to: CircuitState) {
        b.state.store(to as u8, Ordering::Release);
        self.metrics.circuit_state.set(to as i64);
        match to {
            CircuitState::Closed => self.metrics.to_closed.inc(),
            CircuitState::Open => self.metrics.to_open.inc(),
            CircuitState::HalfOpen => self.metrics.to_half_open.inc(),
        };
        tracing::info!(upstream = %self.metrics_name(), state = ?to, "circuit breaker state changed");
    }

    fn metrics_name(&self) -> &str {
        self.metrics.upstream()
    }

    /// Reports a request's result to the breaker: `Some(true)` success,
    /// `Some(false)` an upstream failure, `None` neither (the client's fault).
    pub fn finish(&self, admission: Admission<'_, C>, ok: Option<bool>) {
        self.finish_at(admission, ok, self.clock.clock.now());
    }

    /// [`Resilience::finish`] at `now`, just read from the upstream's clock
    /// (the request path reads it once for this and the upstream latency).
    pub fn finish_at(&self, mut admission: Admission<'_, C>, ok: Option<bool>, at: Instant) {
        admission.done = true;
        let Some(b) = &self.breaker else { return };
        let Some(ok) = ok else {
            if admission.probe {
                let mut h = b.lock.lock().unwrap_or_else(|e| e.into_inner());
                h.probes_in_flight = h.probes_in_flight.saturating_sub(1);
            }
            return;
        };
        let now = self.clock.ms_at(at);
        if admission.probe {
            let mut h = b.lock.lock().unwrap_or_else(|e| e.into_inner());
            h.probes_in_flight = h.probes_in_flight.saturating_sub(1);
            if b.state.load(Ordering::Acquire) != CircuitState::HalfOpen as u8 {
                return;
            }
            if ok {
                h.probe_successes += 1;
                if h.probe_successes >= b.cfg.half_open_requests {
                    b.consecutive.store(0, Ordering::Relaxed);
                    b.window.reset();
                    self.set_state(b, CircuitState::Closed);
                }
            } else {
                h.opened_at_ms = now;
                self.set_state(b, CircuitState::Open);
            }
            return;
        }
        if b.state.load(Ordering::Acquire) != CircuitState::Closed as u8 {
            // Sent before the circuit opened; the probes decide now.
            return;
        }
        if ok {
            if b.consecutive.load(Ordering::Relaxed) != 0 {
                b.consecutive.store(0, Ordering::Relaxed);
            }
            if b.cfg.failure_rate_percent > 0 {
                b.window.add(now, 1, 0);
            }
            return;
        }
        let consecutive = b.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        b.window.add(now, 0, 1);
        let (oks, fails) = b.window.sums(now);
        let total = oks + fails;
        let by_count = b.cfg.consecutive_failures > 0 && consecutive >= b.cfg.consecutive_failures;
        let by_rate = b.cfg.failure_rate_percent > 0
            && total >= u64::from(b.cfg.min_requests)
            && fails * 100 >= u64::from(b.cfg.failure_rate_percent) * total;
        if by_count || by_rate {
            let mut h = b.lock.lock().unwrap_or_else(|e| e.into_inner());
            if b.state.load(Ordering::Acquire) == CircuitState::Closed as u8 {
                h.opened_at_ms = now;
                self.set_state(b, CircuitState::Open);
            }
        }
    }

    /// The URL for the next attempt, starting at `*pos` and skipping URLs that
    /// are ejected or failing health checks; when all are, `*pos` itself.
    pub fn pick(&self, pos: &mut usize) -> usize {
        let n = self.targets.len();
        let start = *pos;
        let chosen = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.targets[i].available(&self.clock))
            .unwrap_or(start % n);
        *pos = chosen + 1;
        chosen
    }

    /// Records one attempt's result against its URL (passive health).
    pub fn target_result(&self, target: usize, ok: bool) {
        let Some(p) = &self.passive else { return };
        let t = &self.targets[target];
        if ok {
            if t.consecutive_failures.load(Ordering::Relaxed) != 0 {
                t.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let n = t.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= p.consecutive_failures {
            let now = self.clock.ms();
            let until = now + u64::try_from(p.ejection.as_millis()).unwrap_or(u64::MAX / 2);
            let current = t.ejected_until_ms.load(Ordering::Relaxed);
            if current <= now
                && t.ejected_until_ms
                    .compare_exchange(current, until, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                t.consecutive_failures.store(0, Ordering::Relaxed);
                t.metrics.ejections.inc();
                t.update_gauge();
                tracing::warn!(upstream = %self.metrics_name(), target, "upstream URL ejected after consecutive failures");
            }
        }
    }

    /// May this request retry once more? Takes from the budget when it may.
    pub fn try_retry(&self) -> bool {
        let now = self.clock.ms();
        let (requests, retries) = self.budget_window.sums(now);
        let floor = u64::from(self.budget.min_per_second) * 10;
        let share = requests * u64::from(self.budget.percent) / 100;
        if retries >= floor.max(share) {
            self.metrics.retries_denied.inc();
            return false;
        }
        self.budget_window.add(now, 0, 1);
        self.metrics.retries_sent.inc();
        true
    }

    /// Is this URL in rotation now?
    pub fn target_available(&self, target: usize) -> bool {
        self.targets[target].available(&self.clock)
    }

    /// The active health check loop for this upstream, if it has one; run it on
    /// its own task for as long as the gateway runs.
    pub fn health_checker(
        &self,
        cfg: &UpstreamCfg,
        client: Client<Connector, RequestBody>,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let hc = cfg.health_check.clone()?;
        let targets = self.targets.clone();
        let urls: Vec<Uri> = cfg
            .targets
            .iter()
            .filter_map(|t| health_uri(t, &hc))
            .collect();
        let name = cfg.name.clone();
        Some(health_loop(name, client, urls, hc, targets))
    }
}

fn target_label(t: &Target) -> String {
    t.origin
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default()
}

fn health_uri(t: &Target, hc: &HealthCheckCfg) -> Option<Uri> {
    let mut parts = t.origin.clone().into_parts();
    parts.path_and_query = hc.path.parse().ok();
    Uri::from_parts(parts).ok()
}

async fn health_loop(
    upstream: String,
    client: Client<Connector, RequestBody>,
    urls: Vec<Uri>,
    hc: HealthCheckCfg,
    targets: std::sync::Arc<[TargetHealth]>,
) {
    let mut ok_streak = vec![0u32; urls.len()];
    let mut fail_streak = vec![0u32; urls.len()];
    let mut tick = tokio::time::interval(hc.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let checks = urls.iter().map(|uri| {
            let req = Request::get(uri.clone())
                .header(http::header::USER_AGENT, "mgw-health-check")
                .body(RequestBody::Empty);
            let client = client.clone();
            async move {
                let Ok(req) = req else { return false };
                match tokio::time::timeout(hc.timeout, client.request(req)).await {
                    Ok(Ok(res)) => res.status().is_success() || res.status().is_redirection(),
                    _ => false,
                }
            }
        });
        let results = futures_util::future::join_all(checks).await;
        for (i, ok) in results.into_iter().enumerate() {
            let t = &targets[i];
            if ok {
                t.metrics.checks_ok.inc();
                fail_streak[i] = 0;
                ok_streak[i] = ok_streak[i].saturating_add(1);
                if !t.active_healthy.load(Ordering::Relaxed) && ok_streak[i] >= hc.healthy_threshold
                {
                    t.active_healthy.store(true, Ordering::Relaxed);
                    // Healthy again ends a passive ejection too.
                    t.ejected_until_ms.store(0, Ordering::Relaxed);
                    t.consecutive_failures.store(0, Ordering::Relaxed);
                    t.update_gauge();
                    tracing::info!(%upstream, target = i, "upstream URL passed its health checks");
                }
            } else {
                t.metrics.checks_failed.inc();
                ok_streak[i] = 0;
                fail_streak[i] = fail_streak[i].saturating_add(1);
                if t.active_healthy.load(Ordering::Relaxed)
                    && fail_streak[i] >= hc.unhealthy_threshold
                {
                    t.active_healthy.store(false, Ordering::Relaxed);
                    t.update_gauge();
                    tracing::warn!(%upstream, target = i, "upstream URL failed its health checks");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::bundle::{Bundle, Config};
    use crate::metrics::Metrics;

    /// A clock the test moves by hand.
    #[derive(Clone)]
    struct ManualClock {
        base: Instant,
        offset_ms: Arc<AtomicU64>,
    }

    impl ManualClock {
        fn new() -> ManualClock {
            ManualClock {
                base: Instant::now(),
                offset_ms: Arc::new(AtomicU64::new(0)),
            }
        }

        fn advance(&self, ms: u64) {
            self.offset_ms.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.base + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
        }
    }

    /// The state of upstream `pets` with these wire settings (`circuitBreaker`,
    /// `passiveHealth`, ...) on `urls` URLs, checked as the gateway checks them.
    fn upstream(
        settings: serde_json::Value,
        urls: usize,
    ) -> (Resilience<ManualClock>, ManualClock) {
        let mut pets = serde_json::json!({
            "urls": (0..urls).map(|i| format!("http://127.0.0.1:{}", 9000 + i)).collect::<Vec<_>>()
        });
        for (k, v) in settings.as_object().unwrap() {
            pets[k] = v.clone();
        }
        let bundle: Bundle = serde_json::from_value(serde_json::json!({
            "schemaVersion": 1,
            "gateway": {"name": "gw", "version": "1"},
            "upstreams": {"pets": pets},
            "apis": [{"name": "pets", "basePath": "/pets", "upstream": "pets",
                      "operations": [{"id": "list", "method": "GET", "path": "/"}]}]
        }))
        .unwrap();
        let config = Config::from_bundle(
            &bundle,
            String::new(),
            Some(&BTreeMap::<String, String>::new()),
        )
        .unwrap();
        let metrics = Metrics::new(&config).upstream("pets").resilience;
        let clock = ManualClock::new();
        let res = Resilience::with_clock(&config.upstreams[0], metrics, clock.clone());
        (res, clock)
    }

    fn breaker(settings: serde_json::Value) -> (Resilience<ManualClock>, ManualClock) {
        upstream(
            serde_json::json!({"circuitBreaker": settings, "passiveHealth": {"enabled": false}}),
            1,
        )
    }

    /// Sends one request through the breaker with this result (`Some(true)`
    /// success, `Some(false)` upstream failure, `None` the client's fault).
    fn request(res: &Resilience<ManualClock>, ok: Option<bool>) -> Result<(), Rejection> {
        let (admission, _permit) = res.admit()?;
        res.finish(admission, ok);
        Ok(())
    }

    fn fail(res: &Resilience<ManualClock>) {
        request(res, Some(false)).expect("admitted");
    }

    fn succeed(res: &Resilience<ManualClock>) {
        request(res, Some(true)).expect("admitted");
    }

    #[test]
    fn consecutive_failures_open_the_circuit() {
        let (res, _clock) = breaker(serde_json::json!(
            {"consecutiveFailures": 3, "failureRatePercent": 0, "openMs": 1000}
        ));
        fail(&res);
        fail(&res);
        // A success in between starts the count again.
        succeed(&res);
        fail(&res);
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Closed);
        // Client faults are neither failures nor successes.
        request(&res, None).unwrap();
        assert_eq!(res.circuit_state(), CircuitState::Closed);
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Open);
        assert_eq!(
            request(&res, Some(true)),
            Err(Rejection::CircuitOpen(Duration::from_millis(1000)))
        );
    }

    #[test]
    fn the_failure_rate_opens_the_circuit_once_enough_requests_are_in_the_window() {
        let (res, _clock) = breaker(serde_json::json!({
            "consecutiveFailures": 0, "failureRatePercent": 50,
            "minRequests": 10, "windowMs": 10000, "openMs": 1000
        }));
        // 5 successes and 4 failures: 44 %, and fewer than 10 requests anyway.
        for i in 0..9 {
            if i % 2 == 0 {
                succeed(&res);
            } else {
                fail(&res);
            }
        }
        assert_eq!(res.circuit_state(), CircuitState::Closed);
        // The 10th request, a failure: 5 of 10.
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Open);
    }

    #[test]
    fn failures_that_left_the_window_do_not_count() {
        let (res, clock) = breaker(serde_json::json!({
            "consecutiveFailures": 0, "failureRatePercent": 50,
            "minRequests": 10, "windowMs": 10000, "openMs": 1000
        }));
        for _ in 0..9 {
            fail(&res);
        }
        assert_eq!(res.circuit_state(), CircuitState::Closed, "only 9 requests");
        clock.advance(11_000);
        // Ten failures in all, but only one in the last 10 s.
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Closed);
        for _ in 0..9 {
            fail(&res);
        }
        assert_eq!(res.circuit_state(), CircuitState::Open);
    }

    #[test]
    fn an_open_circuit_half_opens_after_the_cool_down() {
        let (res, clock) = breaker(serde_json::json!(
            {"consecutiveFailures": 1, "failureRatePercent": 0, "openMs": 300,
             "halfOpenRequests": 1}
        ));
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Open);
        clock.advance(299);
        assert_eq!(
            request(&res, Some(true)),
            Err(Rejection::CircuitOpen(Duration::from_millis(1)))
        );
        assert_eq!(res.circuit_state(), CircuitState::Open);
        clock.advance(1);
        // One probe goes through; while it is out, nothing else does.
        let (probe, _permit) = res.admit().expect("the probe is admitted");
        assert_eq!(res.circuit_state(), CircuitState::HalfOpen);
        assert!(matches!(res.admit(), Err(Rejection::CircuitOpen(_))));
        // A probe dropped without a verdict (client gone) frees its slot.
        drop(probe);
        assert_eq!(res.circuit_state(), CircuitState::HalfOpen);
        let (probe, _permit) = res.admit().expect("the slot was freed");
        res.finish(probe, Some(true));
        assert_eq!(res.circuit_state(), CircuitState::Closed);
    }

    #[test]
    fn half_open_closes_after_as_many_successes_as_probes() {
        let (res, clock) = breaker(serde_json::json!(
            {"consecutiveFailures": 1, "failureRatePercent": 0, "openMs": 300,
             "halfOpenRequests": 2}
        ));
        fail(&res);
        clock.advance(300);
        let (a, _pa) = res.admit().expect("first probe");
        let (b, _pb) = res.admit().expect("second probe");
        assert!(matches!(res.admit(), Err(Rejection::CircuitOpen(_))));
        res.finish(a, Some(true));
        assert_eq!(res.circuit_state(), CircuitState::HalfOpen);
        res.finish(b, Some(true));
        assert_eq!(res.circuit_state(), CircuitState::Closed);
        // Closed again from a clean count: one failure opens it, as configured.
        succeed(&res);
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Open);
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_for_a_fresh_cool_down() {
        let (res, clock) = breaker(serde_json::json!(
            {"consecutiveFailures": 1, "failureRatePercent": 0, "openMs": 300,
             "halfOpenRequests": 1}
        ));
        fail(&res);
        clock.advance(500);
        fail(&res); // the probe
        assert_eq!(res.circuit_state(), CircuitState::Open);
        // The cool-down runs from the failed probe, not from the first opening.
        clock.advance(299);
        assert_eq!(
            request(&res, Some(true)),
            Err(Rejection::CircuitOpen(Duration::from_millis(1)))
        );
        clock.advance(1);
        succeed(&res);
        assert_eq!(res.circuit_state(), CircuitState::Closed);
    }

    #[test]
    fn requests_sent_before_the_circuit_opened_do_not_decide_it() {
        let (res, clock) = breaker(serde_json::json!(
            {"consecutiveFailures": 1, "failureRatePercent": 0, "openMs": 300,
             "halfOpenRequests": 1}
        ));
        let (early, _p1) = res.admit().unwrap();
        let (late, _p2) = res.admit().unwrap();
        fail(&res);
        assert_eq!(res.circuit_state(), CircuitState::Open);
        // A success that was in flight while it opened does not close it...
        res.finish(early, Some(true));
        assert_eq!(res.circuit_state(), CircuitState::Open);
        clock.advance(300);
        let (probe, _p3) = res.admit().expect("the probe");
        assert_eq!(res.circuit_state(), CircuitState::HalfOpen);
        // ...nor does a failure reopen it while half-open: only probes decide.
        res.finish(late, Some(false));
        assert_eq!(res.circuit_state(), CircuitState::HalfOpen);
        res.finish(probe, Some(true));
        assert_eq!(res.circuit_state(), CircuitState::Closed);
    }

    #[test]
    fn an_ejected_url_is_skipped_until_its_ejection_ends() {
        let (res, clock) = upstream(
            serde_json::json!({
                "passiveHealth": {"consecutiveFailures": 2, "ejectionMs": 500},
                "circuitBreaker": {"enabled": false}
            }),
            2,
        );
        res.target_result(0, false);
        assert!(res.target_available(0), "one failure is not enough");
        res.target_result(0, false);
        assert!(!res.target_available(0));
        let mut pos = 0;
        assert_eq!(res.pick(&mut pos), 1);
        clock.advance(499);
        assert!(!res.target_available(0));
        clock.advance(1);
        assert!(res.target_available(0));
        let mut pos = 0;
        assert_eq!(res.pick(&mut pos), 0);
    }

    #[test]
    fn the_retry_budget_refills_as_requests_leave_its_window() {
        let (res, clock) = upstream(
            serde_json::json!({
                "retry": {"attempts": 3, "budgetPercent": 50, "minRetriesPerSecond": 0}
            }),
            1,
        );
        for _ in 0..4 {
            let _ = res.admit().unwrap();
        }
        // 50 % of 4 requests: two retries.
        assert!(res.try_retry());
        assert!(res.try_retry());
        assert!(!res.try_retry());
        // Ten seconds on, the requests and retries have left the window.
        clock.advance(11_000);
        assert!(!res.try_retry(), "no requests, no budget");
        for _ in 0..2 {
            let _ = res.admit().unwrap();
        }
        assert!(res.try_retry());
        assert!(!res.try_retry(), "50 % of 2 requests: one retry");
    }

    #[test]
    fn window_counts_recent_events_only() {
        let w = Window::new(Duration::from_millis(1000));
        w.add(0, 1, 0);
        w.add(50, 0, 2);
        w.add(950, 1, 0);
        assert_eq!(w.sums(950), (2, 2));
        // 1.1 s later the first slots have left the window.
        assert_eq!(w.sums(1_150), (1, 0));
        w.add(5_000, 3, 0);
        assert_eq!(w.sums(5_000), (3, 0));
    }
}
