//! CPU-heavy steps of a request (parsing a large document) run here, off the
//! async workers, so that one large or adversarial body never holds up the
//! other requests on the same worker thread.
//!
//! Every parser the relay calls is bounded and linear (`relay-shs`,
//! `relay-ssbtek`, `relay-elt`), so a small document is parsed inline, where a
//! thread hop would cost more than the parse; above [`INLINE_BYTES`] the work
//! goes to Tokio's blocking pool. The number of such jobs is bounded by the
//! in-flight permits of the admission step: every offloaded parse belongs to
//! an admitted request.

use crate::failure::Failure;

/// Documents up to this size are parsed on the calling task.
pub const INLINE_BYTES: usize = 64 * 1024;

/// Runs `work` (over `bytes` bytes of input) inline when it is small, on a
/// blocking thread otherwise. A panic in `work` is a relay-side failure.
pub async fn parse<T: Send + 'static>(
    bytes: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    if bytes <= INLINE_BYTES {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Failure::relay("parsing the request failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn large_work_leaves_the_calling_thread() {
        let caller = std::thread::current().id();
        let small = parse(10, std::thread::current).await;
        assert_eq!(small.map(|t| t.id()).ok(), Some(caller));
        let large = parse(INLINE_BYTES + 1, std::thread::current).await;
        assert!(large.is_ok_and(|t| t.id() != caller));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_is_a_relay_side_failure() {
        let r: Result<(), _> = parse(INLINE_BYTES + 1, || panic!("boom")).await;
        let f = r.err();
        assert!(f.is_some_and(|f| matches!(f.by, crate::failure::By::Relay)));
    }
}
