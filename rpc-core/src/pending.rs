//! The client's book of outstanding jobs: waiters of `call`s and deadlines of `submit`s, keyed by
//! correlation id. Every entry leaves by its reply or by its deadline, so the book stays bounded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::acks::Receipt;

/// A reply as it arrived on the callback queue.
#[derive(Debug)]
pub struct Reply {
    /// The correlation id it carried.
    pub correlation_id: String,
    /// The JSON-RPC response (or batch) body.
    pub body: Vec<u8>,
    /// Acknowledges the reply's delivery when dropped: keep it until the reply is recorded.
    pub receipt: Receipt,
}

/// Who was waiting for a reply.
#[derive(Debug)]
pub(crate) enum Claim {
    /// A `call` waits on this channel.
    Call(oneshot::Sender<Reply>),
    /// A `submit`: the reply goes to the client's reply handler.
    Submitted,
    /// Nobody: a duplicate, a reply after the deadline, or one for another client incarnation.
    Unknown,
}

#[derive(Debug, Default)]
struct Book {
    calls: HashMap<String, oneshot::Sender<Reply>>,
    /// Each submitted job's key in `deadlines`, so that its reply removes both: the deadline
    /// index holds only jobs still waiting, not every job of the last timeout period.
    submitted: HashMap<String, (Instant, u64)>,
    deadlines: BTreeMap<(Instant, u64), String>,
    next_seq: u64,
}

/// Shared, cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending(Arc<Mutex<Book>>);

impl Pending {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic while holding this lock cannot leave the maps half-updated (each operation is
        // a single insert/remove), so a poisoned lock is still consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Register a `call` waiter; the returned guard removes it when dropped.
    pub(crate) fn register_call(&self, id: String) -> (CallGuard, oneshot::Receiver<Reply>) {
        let (sender, receiver) = oneshot::channel();
        self.book().calls.insert(id.clone(), sender);
        (
            CallGuard {
                pending: self.clone(),
                id,
            },
            receiver,
        )
    }

    /// Register a submitted job whose deadline is `deadline`.
    pub(crate) fn register_submitted(&self, id: String, deadline: Instant) {
        let mut book = self.book();
        let seq = book.next_seq;
        book.next_seq += 1;
        book.deadlines.insert((deadline, seq), id.clone());
        if let Some(earlier) = book.submitted.insert(id, (deadline, seq)) {
            // The same id submitted again: only its newest registration counts.
            book.deadlines.remove(&earlier);
        }
    }

    /// Forget a submitted job (its publish failed).
    pub(crate) fn forget_submitted(&self, id: &str) {
        let mut book = self.book();
        if let Some(key) = book.submitted.remove(id) {
            book.deadlines.remove(&key);
        }
    }

    /// Who was waiting for this correlation id (removing them: the first reply wins).
    pub(crate) fn claim(&self, correlation_id: &str) -> Claim {
        let mut book = self.book();
        if let Some(sender) = book.calls.remove(correlation_id) {
            return Claim::Call(sender);
        }
        if let Some(key) = book.submitted.remove(correlation_id) {
            book.deadlines.remove(&key);
            return Claim::Submitted;
        }
        Claim::Unknown
    }

    /// Remove submitted jobs whose deadline is at or before `now`; returns their ids.
    pub(crate) fn expire(&self, now: Instant) -> Vec<String> {
        let mut book = self.book();
        let mut expired = Vec::new();
        while let Some(entry) = book.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (key, id) = entry.remove_entry();
            // Only if it is still waiting (not replied) and is the same registration.
            if book.submitted.get(&id) == Some(&key) {
                book.submitted.remove(&id);
                expired.push(id);
            }
        }
        expired
    }

    /// Outstanding calls and submitted jobs.
    pub(crate) fn len(&self) -> usize {
        let book = self.book();
        book.calls.len() + book.submitted.len()
    }
}

/// Removes a call's waiter when the call ends, however it ends (reply, timeout, cancellation).
#[derive(Debug)]
pub(crate) struct CallGuard {
    pending: Pending,
    id: String,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.pending.book().calls.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_call_guard_removes_its_waiter() {
        let pending = Pending::default();
        let (guard, _receiver) = pending.register_call("a".into());
        assert_eq!(pending.len(), 1);
        drop(guard);
        assert_eq!(pending.len(), 0);
        assert!(matches!(pending.claim("a"), Claim::Unknown));
    }

    #[test]
    fn the_first_reply_wins() {
        let pending = Pending::default();
        let (_guard, _receiver) = pending.register_call("a".into());
        assert!(matches!(pending.claim("a"), Claim::Call(_)));
        assert!(matches!(pending.claim("a"), Claim::Unknown));
    }

    #[test]
    fn submitted_jobs_expire_at_their_deadline_only() {
        let pending = Pending::default();
        let now = Instant::now();
        pending.register_submitted("soon".into(), now + Duration::from_millis(10));
        pending.register_submitted("later".into(), now + Duration::from_secs(10));
        pending.register_submitted("answered".into(), now + Duration::from_millis(5));
        assert!(matches!(pending.claim("answered"), Claim::Submitted));
        assert_eq!(pending.expire(now), Vec::<String>::new());
        assert_eq!(
            pending.expire(now + Duration::from_millis(20)),
            vec!["soon".to_owned()]
        );
        assert_eq!(pending.len(), 1);
        assert_eq!(
            pending.expire(now + Duration::from_secs(11)),
            vec!["later".to_owned()]
        );
        assert_eq!(pending.len(), 0);
    }

    /// The deadline index holds only jobs still waiting: a gateway submitting thousands of jobs
    /// per second with 30 s deadlines must not keep every one of them until it is due.
    #[test]
    fn a_reply_or_a_forget_removes_the_deadline() {
        let pending = Pending::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        for id in ["a", "b", "c"] {
            pending.register_submitted(id.into(), deadline);
        }
        pending.register_submitted("a".into(), deadline + Duration::from_secs(1));
        assert_eq!(pending.book().deadlines.len(), 3);
        assert!(matches!(pending.claim("a"), Claim::Submitted));
        pending.forget_submitted("b");
        assert_eq!(pending.book().deadlines.len(), 1);
        assert_eq!(pending.len(), 1);
    }
}
