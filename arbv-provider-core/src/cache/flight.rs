//! Single flight: identical tasks arriving together run their action once.
//!
//! Hand-written rather than moka's `get_with`: that coalesces only values it then keeps, while
//! here every answer of the leader (an error too) goes to the tasks waiting on it and only a
//! `success` is kept, the store may be Redis, and a leader that ends without an answer
//! (timeout, panic, dropped task) must hand the lead to a waiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The flights of one action, by key hash.
pub(crate) struct Flights<T> {
    running: Mutex<HashMap<String, watch::Receiver<Option<T>>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
        }
    }
}

/// A task's part in the flight of its key.
pub(crate) enum Role<T> {
    /// It runs the action, and gives its answer to the others with [`Lead::land`].
    Leader(Lead<T>),
    /// Another task runs it: [`wait`] for its answer.
    Waiter(watch::Receiver<Option<T>>),
}

/// The lead of a flight. Dropped without landing (the task ended without an answer, or was
/// dropped), it ends the flight and one of the waiters takes the lead.
pub(crate) struct Lead<T> {
    flights: Arc<Flights<T>>,
    key: String,
    answer: watch::Sender<Option<T>>,
}

impl<T: Clone> Flights<T> {
    /// Joins the flight of `key`, or starts it.
    pub(crate) fn join(self: &Arc<Self>, key: &str) -> Role<T> {
        let mut running = self
            .running
            .lock()
            .expect("the flight map is never poisoned");
        if let Some(flight) = running.get(key) {
            return Role::Waiter(flight.clone());
        }
        let (answer, flight) = watch::channel(None);
        running.insert(key.to_owned(), flight);
        Role::Leader(Lead {
            flights: self.clone(),
            key: key.to_owned(),
            answer,
        })
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.running.lock().unwrap().len()
    }
}

impl<T> Lead<T> {
    /// Gives `answer` to the waiters and ends the flight.
    pub(crate) fn land(self, answer: T) {
        self.answer.send_replace(Some(answer));
    }
}

impl<T> Drop for Lead<T> {
    fn drop(&mut self) {
        let mut running = self
            .flights
            .running
            .lock()
            .expect("the flight map is never poisoned");
        if running
            .get(&self.key)
            .is_some_and(|flight| flight.same_channel(&self.answer.subscribe()))
        {
            running.remove(&self.key);
        }
    }
}

/// The leader's answer, or `None` when the leader ended without one (join again then).
pub(crate) async fn wait<T: Clone>(mut flight: watch::Receiver<Option<T>>) -> Option<T> {
    match flight.wait_for(Option::is_some).await {
        Ok(answer) => answer.clone(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Runs `work` once per flight of `key`, as dispatch does.
    async fn run_once(
        flights: &Arc<Flights<u32>>,
        key: &str,
        runs: &AtomicUsize,
        work: impl AsyncFn() -> Option<u32>,
    ) -> Option<u32> {
        loop {
            match flights.join(key) {
                Role::Leader(lead) => {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let answer = work().await?;
                    lead.land(answer);
                    return Some(answer);
                }
                Role::Waiter(flight) => {
                    if let Some(answer) = wait(flight).await {
                        return Some(answer);
                    }
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_identical_tasks_run_once() {
        let flights = Arc::new(Flights::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (flights, runs) = (flights.clone(), runs.clone());
                tokio::spawn(async move {
                    run_once(&flights, "k", &runs, async || {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Some(7)
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Some(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0, "a landed flight is over");
        // Another key flies on its own.
        assert_eq!(
            run_once(&flights, "other", &runs, async || Some(8)).await,
            Some(8)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_takes_the_lead_when_the_leader_is_dropped_or_ends_without_answer() {
        let flights = Arc::new(Flights::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        // The leader's task is dropped mid-run.
        let leader = {
            let (flights, runs) = (flights.clone(), runs.clone());
            tokio::spawn(async move {
                run_once(&flights, "k", &runs, async || {
                    std::future::pending::<()>().await;
                    Some(0)
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (flights, runs) = (flights.clone(), runs.clone());
                tokio::spawn(async move {
                    run_once(&flights, "k", &runs, async || {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Some(9)
                    })
                    .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        leader.abort();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Some(9));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one waiter took the lead");

        // A leader that ends without an answer (a timeout answered as an error).
        let first = run_once(&flights, "t", &runs, async || None);
        let second = run_once(&flights, "t", &runs, async || Some(5));
        let (first, second) = tokio::join!(first, second);
        assert_eq!((first, second), (None, Some(5)));
        assert_eq!(flights.in_flight(), 0);
    }
}
