//! When periodic work runs: every period, the first one period after start,
//! and, with a daily window (`storage.gcTimeWindow`), only inside it.
//!
//! Invariants:
//! - A run that falls due outside the window is deferred, never dropped: it
//!   starts when the window next opens (one run, however many periods
//!   passed meanwhile), so `gcInterval: 24h` with a one-hour window runs
//!   once a day.
//! - The next run is due one period after the previous one started (not
//!   after it finished, not after it fell due), so a deferred run does not
//!   drag the schedule out of the window; a run longer than the period is
//!   followed at once by the next, never by a backlog.
//! - The decisions are made over a [`Clock`], so they are tested with a
//!   fake one.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;
use zot_config::TimeWindow;

/// Wall-clock time and sleeping.
pub trait Clock {
    /// Time since the Unix epoch (UTC).
    fn now(&self) -> Duration;
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// The system clock, sleeping on the tokio timer.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// Runs `round` every `period` within `window`, until it breaks.
pub async fn run<C, F, Fut>(clock: &C, period: Duration, window: Option<TimeWindow>, mut round: F)
where
    C: Clock,
    F: FnMut() -> Fut,
    Fut: Future<Output = ControlFlow<()>>,
{
    let mut due = clock.now() + period;
    loop {
        sleep_until(clock, due).await;
        let started = loop {
            let now = clock.now();
            let start = window.map_or(now, |w| w.start_of_run_due_at(now));
            if start <= now {
                break now;
            }
            tracing::info!(
                in_secs = (start - now).as_secs(),
                "gc: due outside gcTimeWindow; deferred until it opens"
            );
            clock.sleep(start - now).await;
        };
        if round().await.is_break() {
            return;
        }
        due = started + period;
    }
}

async fn sleep_until<C: Clock>(clock: &C, at: Duration) {
    let now = clock.now();
    if at > now {
        clock.sleep(at - now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock whose sleeps return at once, having moved time forward.
    struct FakeClock(Mutex<Duration>);

    impl FakeClock {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
            self.advance(d);
            std::future::ready(())
        }
    }

    fn at(day: u64, h: u64, m: u64) -> Duration {
        Duration::from_secs(day * 86_400 + h * 3600 + m * 60)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// The start times of the first `n` runs, each lasting `lasts`.
    fn starts(
        from: Duration,
        period: Duration,
        window: Option<&str>,
        lasts: Duration,
        n: usize,
    ) -> Vec<Duration> {
        let clock = FakeClock(Mutex::new(from));
        let window = window.map(|w| w.parse::<TimeWindow>().expect("valid window"));
        let mut out = Vec::new();
        let rounds = run(&clock, period, window, || {
            out.push(clock.now());
            clock.advance(lasts);
            let flow = if out.len() == n {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            };
            std::future::ready(flow)
        });
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let ready = std::pin::pin!(rounds).poll(&mut cx).is_ready();
        assert!(ready, "a fake clock never waits");
        out
    }

    #[test]
    fn without_a_window_every_period() {
        assert_eq!(
            starts(at(0, 10, 0), HOUR, None, Duration::from_secs(60), 3),
            [at(0, 11, 0), at(0, 12, 0), at(0, 13, 0)]
        );
    }

    #[test]
    fn a_daily_interval_with_a_one_hour_window_runs_daily() {
        // Started at 10:00, due at 10:00 next day, outside 02:00-03:00.
        assert_eq!(
            starts(at(0, 10, 0), 24 * HOUR, Some("02:00-03:00"), HOUR / 4, 3),
            [at(2, 2, 0), at(3, 2, 0), at(4, 2, 0)]
        );
    }

    #[test]
    fn runs_due_inside_the_window_start_at_once() {
        assert_eq!(
            starts(
                at(0, 1, 0),
                HOUR / 2,
                Some("01:00-02:00"),
                Duration::ZERO,
                3
            ),
            [at(0, 1, 30), at(1, 1, 0), at(1, 1, 30)]
        );
    }

    #[test]
    fn a_window_across_midnight() {
        assert_eq!(
            starts(
                at(0, 12, 0),
                6 * HOUR,
                Some("23:00-01:00"),
                Duration::ZERO,
                4
            ),
            [at(0, 23, 0), at(1, 23, 0), at(2, 23, 0), at(3, 23, 0)]
        );
        assert_eq!(
            starts(at(0, 22, 30), HOUR, Some("23:00-01:00"), Duration::ZERO, 4),
            [at(0, 23, 30), at(1, 0, 30), at(1, 23, 0), at(2, 0, 0)]
        );
    }

    #[test]
    fn a_run_longer_than_the_period_is_followed_at_once_without_backlog() {
        assert_eq!(
            starts(at(0, 0, 0), HOUR, None, 3 * HOUR, 3),
            [at(0, 1, 0), at(0, 4, 0), at(0, 7, 0)]
        );
    }
}
