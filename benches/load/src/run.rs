//! The two ways of applying load. Closed loop: `concurrency` workers, each
//! sending its next query when the last is answered (throughput is what the
//! system gives). Open loop: queries fall due at a fixed rate whatever happens
//! to earlier ones, each timed from when it was due (see [`crate::schedule`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::schedule::{OpenLoop, latency_from_due};
use crate::stats::{Recorder, Summary};
use crate::workload::ErrorKind;

/// How the load is applied.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    Closed {
        concurrency: usize,
    },
    /// `max_outstanding` bounds the queries in flight; one due while that many
    /// are unanswered is not sent and counts as the error `bench_saturated`.
    Open {
        schedule: OpenLoop,
        max_outstanding: usize,
    },
}

/// Applies `load` for `duration`, calling `query(i)` for the i-th query;
/// returns when every sent query is answered.
pub async fn drive<F, Fut>(load: Load, duration: Duration, query: F) -> Summary
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ErrorKind>> + Send + 'static,
{
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let start = Instant::now();
    let end = start + duration;
    match load {
        Load::Closed { concurrency } => {
            let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let workers: Vec<_> = (0..concurrency.max(1))
                .map(|_| {
                    let query = query.clone();
                    let recorder = recorder.clone();
                    let next = next.clone();
                    tokio::spawn(async move {
                        while Instant::now() < end {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let sent = Instant::now();
                            let result = query(i).await;
                            record(&recorder, result, sent.elapsed());
                        }
                    })
                })
                .collect();
            for w in workers {
                let _ = w.await;
            }
        }
        Load::Open {
            schedule,
            max_outstanding,
        } => {
            let outstanding = Arc::new(tokio::sync::Semaphore::new(max_outstanding.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..schedule.count_within(duration) {
                let due = start + schedule.due_after(i);
                tokio::time::sleep_until(due).await;
                let Ok(permit) = outstanding.clone().try_acquire_owned() else {
                    record(&recorder, Err("bench_saturated".into()), Duration::ZERO);
                    continue;
                };
                let query = query.clone();
                let recorder = recorder.clone();
                tasks.spawn(async move {
                    let result = query(i).await;
                    let latency = latency_from_due(due.into_std(), Instant::now().into_std());
                    record(&recorder, result, latency);
                    drop(permit);
                });
                // Reap finished tasks so the set does not grow with the run.
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let elapsed = start.elapsed();
    let recorder = std::mem::take(&mut *recorder.lock().unwrap_or_else(|p| p.into_inner()));
    recorder.summary(elapsed)
}

fn record(recorder: &Mutex<Recorder>, result: Result<(), ErrorKind>, latency: Duration) {
    let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(()) => r.ok(latency),
        Err(kind) => r.error(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_charges_a_stall_to_the_queries_that_fell_due_during_it() {
        // 100 q/s for 1 s; every answer takes 1 ms, except that query 10 stalls
        // the "server" for 100 ms and the queries due meanwhile wait for it.
        let stalled_until = Arc::new(Mutex::new(None::<Instant>));
        let s = stalled_until.clone();
        let load = Load::Open {
            schedule: OpenLoop::new(100.0).unwrap(),
            max_outstanding: 1_000,
        };
        let summary = drive(load, Duration::from_secs(1), move |i| {
            let s = s.clone();
            async move {
                if i == 10 {
                    *s.lock().unwrap() = Some(Instant::now() + Duration::from_millis(100));
                }
                let until = *s.lock().unwrap();
                if let Some(until) = until {
                    tokio::time::sleep_until(until).await;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(())
            }
        })
        .await;
        assert_eq!(summary.ok, 100);
        // Query 10 took 101 ms; queries 11..=19, due during the stall, are
        // charged from their due time: 91, 81, ... 11 ms (timing them from
        // when they were sent would have shown 1 ms each).
        assert_eq!(summary.max, Duration::from_millis(101));
        assert_eq!(summary.p99, Duration::from_millis(91), "{summary:?}");
        assert_eq!(summary.p50, Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_keeps_concurrency_queries_in_flight() {
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (f, p) = (in_flight.clone(), peak.clone());
        let load = Load::Closed { concurrency: 4 };
        let summary = drive(load, Duration::from_secs(1), move |_| {
            let (f, p) = (f.clone(), p.clone());
            async move {
                let now = f.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                p.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                f.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
        })
        .await;
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 4);
        // Four workers × 100 queries of 10 ms in one second.
        assert_eq!(summary.ok, 400);
        assert_eq!(summary.p99, Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_beyond_its_outstanding_bound_counts_saturation() {
        let load = Load::Open {
            schedule: OpenLoop::new(100.0).unwrap(),
            max_outstanding: 5,
        };
        let summary = drive(load, Duration::from_millis(200), |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await;
        assert_eq!(summary.ok, 5);
        assert_eq!(summary.errors["bench_saturated"], 15);
    }
}
