//! Progress of long operations, reported through a callback: the library never draws (it may
//! run inside a test or a service); the binary turns these calls into a progress bar.

use std::fmt;
use std::sync::Arc;

/// A callback told `(done, total)` units of work (exchanges) as a long operation goes on.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(u64, u64) + Send + Sync>);

impl Progress {
    /// Call `report(done, total)` as work goes on; `done == total` at the end.
    pub fn new(report: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(report))
    }

    pub(crate) fn report(&self, done: u64, total: u64) {
        (self.0)(done, total)
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress(..)")
    }
}
