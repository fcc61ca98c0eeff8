//! The record of each exchange: classified when its request arrives, taught to the classifier
//! and its secrets numbered before the client sees the response, then finished off the
//! client's path (decode the response body, the shared ingest step, the store's writer).
//!
//! A [`Pending`] record travels with the request (handler, then response body); whoever
//! ends the exchange calls [`Pending::finish`], and dropping it unfinished records the
//! exchange as "client aborted" — the client hung up and hyper dropped our future or body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::ExchangeObserver;
use super::capture::{CaptureBudget, CaptureHandle, Captured, Held};
use crate::recording::decode::{decode, is_encoded};
use crate::recording::{Exchange, Ingest};
use crate::redact::ExchangeView;
use crate::store::{Admission, ExchangeSink};

/// The error text of an exchange the client abandoned.
pub const CLIENT_ABORTED: &str = "client aborted";

/// Largest response body learned from on the client's path; larger ones (rare: UCWA
/// resources are a few KiB) are learned from when their record is finished.
const MAX_LEARN_INLINE: usize = 1024 * 1024;

/// Session-wide recording state shared by every connection.
#[derive(Debug)]
pub struct Recorder {
    ingest: Arc<Ingest>,
    /// Taken out at shutdown so that the writer can finish even if a connection outlives
    /// the drain deadline; exchanges finishing later are logged, not stored.
    sink: Mutex<Option<ExchangeSink>>,
    /// Hands ended exchanges to the finishing thread; taken out at shutdown.
    finishing: Mutex<Option<Sender<Ended>>>,
    finisher: Mutex<Option<JoinHandle<()>>>,
    /// What finishing a record needs, shared with the finishing thread.
    finish: Arc<Finish>,
    /// What every body copy draws on (`--max-capture-memory`).
    budget: Arc<CaptureBudget>,
    seq: AtomicU64,
}

/// Exchanges handed to the writer, and exchanges that could not be.
#[derive(Debug, Default)]
struct Counts {
    submitted: AtomicU64,
    lost: AtomicU64,
}

/// What finishing a record needs: the ingest step, the body cap for decoding, the counts,
/// and who hears of each finished exchange.
#[derive(Debug)]
struct Finish {
    ingest: Arc<Ingest>,
    counts: Counts,
    max_body: usize,
    observer: Option<ExchangeObserver>,
}

/// An ended exchange on its way to the finishing thread.
#[derive(Debug)]
struct Ended {
    exchange: Exchange,
    response_decoded: bool,
    learned: bool,
    admission: Option<Admission>,
    /// The body copies' share of the capture budget, given back once the writer has them.
    held: Held,
}

impl Recorder {
    /// Records numbered from `after_seq + 1` (0 for a new session); `observer` hears of each
    /// exchange as it is finished (the terminal's access log).
    ///
    /// Also starts the thread that finishes records (decode, ingest, hand to the writer).
    /// One thread fed by a channel, not a blocking-pool task per exchange: handing each
    /// exchange to the pool (a task, a wake-up, often a thread switch) cost more than the
    /// finishing itself (perf issue 10). The channel is unbounded, but what it holds is
    /// counted in the writer's bound ([`Admission`]), which the proxy waits on before it
    /// forwards a request.
    pub fn new(
        ingest: Ingest,
        sink: ExchangeSink,
        max_body: usize,
        after_seq: u64,
        observer: Option<ExchangeObserver>,
        max_capture_memory: usize,
    ) -> Self {
        let finish = Arc::new(Finish {
            ingest: Arc::new(ingest),
            counts: Counts::default(),
            max_body,
            observer,
        });
        let (tx, rx) = channel::<Ended>();
        let finisher = {
            let finish = finish.clone();
            std::thread::Builder::new()
                .name("ucwa-record-finish".into())
                .spawn(move || finish_loop(&rx, &finish))
        };
        let (tx, finisher) = match finisher {
            Ok(handle) => (Some(tx), Some(handle)),
            Err(err) => {
                // No thread to spare: records are finished inline instead.
                tracing::warn!(%err, "no record-finishing thread; finishing records inline");
                (None, None)
            }
        };
        Recorder {
            ingest: finish.ingest.clone(),
            sink: Mutex::new(Some(sink)),
            finishing: Mutex::new(tx),
            finisher: Mutex::new(finisher),
            finish,
            budget: CaptureBudget::new(max_capture_memory),
            seq: AtomicU64::new(after_seq),
        }
    }

    /// The budget every body copy of this recording draws on.
    pub fn budget(&self) -> &Arc<CaptureBudget> {
        &self.budget
    }

    /// Start the record of a request that has just arrived: its `seq` is its arrival order,
    /// and its kind is decided now, from what the responses the client has seen so far
    /// taught (not from responses that happen to finish earlier).
    pub fn begin(self: &Arc<Self>, method: &str, client_path: &str) -> Pending {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let started_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        Pending {
            recorder: self.clone(),
            exchange: Some(Exchange {
                seq,
                started_us,
                kind: self.ingest.classify(method, client_path),
                ..Default::default()
            }),
            started: Instant::now(),
            request_body: None,
            response_held: Held::new(&self.budget),
            response_decoded: false,
            learned: false,
        }
    }

    /// Wait (at most `deadline`) for exchanges being finished, then let go of the sink.
    pub async fn close(&self, deadline: std::time::Duration) {
        // The finishing thread ends once it has finished what was handed to it.
        drop(lock(&self.finishing).take());
        let finisher = lock(&self.finisher).take();
        if let Some(handle) = finisher {
            let started = tokio::time::Instant::now();
            while !handle.is_finished() && started.elapsed() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                tracing::warn!("some exchanges were still being finished at shutdown");
            }
        }
        lock(&self.sink).take();
    }

    /// Wait until the recording writer has room (backpressure, perf issue 10): awaited
    /// before a request is forwarded, so a writer that falls behind slows the proxy down
    /// instead of growing memory. Holds nothing afterwards (a held P-GET holds no room).
    pub async fn room(&self) {
        let sink = lock(&self.sink).clone();
        if let Some(sink) = sink {
            sink.room().await;
        }
    }

    /// Count a finished exchange into the writer's bound before its record is finished
    /// on the blocking pool (perf issue 10); None once the sink is let go at shutdown.
    fn admit(&self, ex: &Exchange) -> Option<Admission> {
        let sink = lock(&self.sink);
        Some(sink.as_ref()?.admit(crate::store::weight(ex)))
    }

    /// Exchanges handed to the writer, and exchanges that could not be.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.finish.counts.submitted.load(Ordering::Relaxed),
            self.finish.counts.lost.load(Ordering::Relaxed),
        )
    }

    /// Finish the record of an ended exchange on the finishing thread (inline once that is
    /// gone, at shutdown).
    fn hand_over(&self, ended: Ended) {
        let ended = match lock(&self.finishing).as_ref() {
            Some(tx) => match tx.send(ended) {
                Ok(()) => return,
                Err(back) => back.0,
            },
            None => ended,
        };
        complete(&self.finish, ended);
    }
}

/// A lock whose data a panic elsewhere cannot leave inconsistent (an `Option` taken out).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long the finishing thread looks for more work before it sleeps until woken.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

/// The finishing thread: finish what arrives, in order, until the recorder lets go. Once
/// the channel is empty it looks again after [`GATHER`] before blocking: under load the
/// next exchanges are there by then, so the proxy's threads seldom have to wake it (a
/// wake-up is a system call on the client's path).
fn finish_loop(rx: &Receiver<Ended>, finish: &Finish) {
    while let Ok(ended) = rx.recv() {
        complete(finish, ended);
        let mut looked_again = false;
        loop {
            match rx.try_recv() {
                Ok(ended) => {
                    complete(finish, ended);
                    looked_again = false;
                }
                Err(TryRecvError::Empty) if !looked_again => {
                    std::thread::sleep(GATHER);
                    looked_again = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// Everything that turns a raw exchange into a stored row (CPU work, off the client's path).
fn complete(finish: &Finish, ended: Ended) {
    let Finish {
        ingest,
        counts,
        max_body,
        observer,
    } = finish;
    let max_body = *max_body;
    let Ended {
        exchange: mut ex,
        response_decoded,
        learned,
        admission,
        held,
    } = ended;
    if !response_decoded {
        let encoding = ex
            .response_headers
            .get("content-encoding")
            .map(str::to_string);
        if let Some(enc) = encoding.filter(|e| is_encoded(Some(e))) {
            if ex.response_truncated {
                // A cut compressed stream cannot be decoded; keep it as it came.
                ex.content_encoding = Some(enc);
            } else {
                match decode(&enc, &ex.response_body, max_body) {
                    Ok(d) => {
                        ex.response_body = d.bytes;
                        ex.response_truncated = d.truncated;
                        ex.content_encoding = Some(enc);
                    }
                    Err(err) => {
                        tracing::warn!(seq = ex.seq, %err, "response body stored still encoded");
                        ex.content_encoding = Some(enc);
                    }
                }
            }
        }
    }
    ingest.ingest_classified(&mut ex, learned);
    tracing::debug!(
        seq = ex.seq,
        method = %ex.method,
        path = %ex.path,
        status = ?ex.status,
        kind = %ex.kind,
        ms = ex.duration_us / 1000,
        events = ex.events.len(),
        error = ex.error.as_deref().unwrap_or(""),
        "exchange"
    );
    if let Some(observer) = observer {
        observer.tell(&ex);
    }
    let stored = match admission {
        Some(admission) => {
            admission.submit(ex);
            true
        }
        None => false,
    };
    // Handed to the writer, whose own bound counts it from here.
    drop(held);
    if stored {
        counts.submitted.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("an exchange finished after shutdown and was not stored");
    }
}

/// The record of one exchange in flight.
#[derive(Debug)]
pub struct Pending {
    recorder: Arc<Recorder>,
    exchange: Option<Exchange>,
    started: Instant,
    request_body: Option<CaptureHandle>,
    /// What the response copy holds of the capture budget.
    response_held: Held,
    response_decoded: bool,
    /// The classifier has learned this exchange's response links.
    learned: bool,
}

impl Pending {
    /// The row being filled (None only after finishing).
    pub fn exchange(&mut self) -> Option<&mut Exchange> {
        self.exchange.as_mut()
    }

    /// Number the secrets this exchange has shown so far, before the client sees the
    /// response. Redaction proper runs later, off the client's path, in whatever order
    /// exchanges finish; numbering here instead means a client's next request can never be
    /// redacted first, so placeholders follow the order the conversation revealed the
    /// secrets, and two runs of one script store the same `REDACTED-n`.
    pub fn number_secrets(&mut self) {
        let Some(ex) = self.exchange.as_ref() else {
            return;
        };
        // The request body copy is still the tee's; read it where it is.
        let captured = self.request_body.as_ref().map(|handle| {
            handle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        let request_body = match &captured {
            Some(copy) => &copy.bytes[..],
            None => &ex.request_body[..],
        };
        self.recorder.ingest.number_secrets(ExchangeView {
            path: &ex.path,
            query: ex.query.as_deref(),
            request_headers: &ex.request_headers.0,
            request_body,
            response_headers: &ex.response_headers.0,
            response_body: &ex.response_body,
        });
    }

    /// Teach the classifier the links of the response, before the client can follow them.
    pub fn learn(&mut self) {
        if let Some(ex) = self.exchange.as_ref()
            && !self.learned
            && ex.response_body.len() <= MAX_LEARN_INLINE
            // A body still compressed is learned from once decoded, off the client's path.
            && (self.response_decoded || !is_encoded(ex.response_headers.get("content-encoding")))
        {
            self.recorder.ingest.learn(ex);
            self.learned = true;
        }
    }

    /// Where the request body copy will be.
    pub fn set_request_capture(&mut self, handle: CaptureHandle) {
        self.request_body = Some(handle);
    }

    /// Store an already decoded (or never encoded) response body, cut at the cap.
    pub fn set_response_body(&mut self, body: &[u8], content_encoding: Option<String>) {
        let max = self.recorder.finish.max_body;
        if let Some(ex) = self.exchange.as_mut() {
            ex.response_truncated = self
                .response_held
                .keep_whole(&mut ex.response_body, body, max);
            ex.content_encoding = content_encoding;
        }
        self.response_decoded = true;
    }

    /// Copy streamed response bytes, up to the cap.
    pub fn keep_response(&mut self, data: &[u8]) {
        let max = self.recorder.finish.max_body;
        if let Some(ex) = self.exchange.as_mut()
            && self
                .response_held
                .keep_capped(&mut ex.response_body, data, max)
        {
            ex.response_truncated = true;
        }
    }

    /// End the exchange (with an error, if any) and finish its record in the background.
    pub fn finish(&mut self, error: Option<String>) {
        // Still on the client's path: the last byte has not gone out yet.
        self.learn();
        let Some(mut ex) = self.exchange.take() else {
            return;
        };
        ex.duration_us = self.started.elapsed().as_micros() as i64;
        if ex.error.is_none() {
            ex.error = error;
        }
        // The copies hold their share of the capture budget until the writer has them.
        let mut held = std::mem::take(&mut self.response_held);
        if let Some(handle) = self.request_body.take()
            && let Ok(mut copy) = handle.lock()
        {
            let Captured {
                bytes,
                truncated,
                held: request_held,
                ..
            } = std::mem::take(&mut *copy);
            ex.request_body = bytes;
            ex.request_truncated = truncated;
            held.absorb(request_held);
        }
        let admission = self.recorder.admit(&ex);
        self.recorder.hand_over(Ended {
            exchange: ex,
            response_decoded: self.response_decoded,
            learned: self.learned,
            admission,
            held,
        });
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.exchange.is_some() {
            tracing::debug!("client went away before the exchange ended");
            self.finish(Some(CLIENT_ABORTED.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{HeaderList, KeyOptions, ResourceKind};
    use crate::redact::RedactConfig;
    use crate::store::{NewSession, Recording, StoreWriter};

    fn recorder(writer: &StoreWriter) -> Arc<Recorder> {
        Arc::new(Recorder::new(
            Ingest::new(&RedactConfig::default(), KeyOptions::default()).unwrap(),
            writer.sink(),
            1 << 20,
            0,
            None,
            1 << 22,
        ))
    }

    fn writer(dir: &tempfile::TempDir) -> StoreWriter {
        StoreWriter::create(
            &dir.path().join("r.sqlite"),
            &NewSession::new("s", "https://fe1.contoso.com"),
        )
        .unwrap()
    }

    fn stored(dir: &tempfile::TempDir, writer: StoreWriter) -> Vec<Exchange> {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(writer.finish())
            .unwrap();
        let rec = Recording::open(&dir.path().join("r.sqlite")).unwrap();
        rec.exchanges(&rec.session(None).unwrap()).unwrap()
    }

    /// The token response's exchange finishes after the next request that uses the token:
    /// numbering at response time still gives the token the number it was revealed with.
    #[test]
    fn secrets_are_numbered_in_the_order_the_client_saw_them() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let recorder = recorder(&writer);
        let mut token = recorder.begin("POST", "/WebTicket/oauthtoken");
        {
            let ex = token.exchange().unwrap();
            ex.method = "POST".into();
            ex.path = "/WebTicket/oauthtoken".into();
            ex.request_headers = HeaderList(vec![(
                "content-type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            )]);
            ex.request_body = b"grant_type=password&username=alice&password=s3cret-pw".to_vec();
            ex.status = Some(200);
            ex.response_headers =
                HeaderList(vec![("content-type".into(), b"application/json".to_vec())]);
        }
        token.set_response_body(br#"{"access_token":"cwt=AAEBsecretToken"}"#, None);
        token.number_secrets();
        let mut user = recorder.begin("GET", "/user");
        {
            let ex = user.exchange().unwrap();
            ex.method = "GET".into();
            ex.path = "/user".into();
            ex.request_headers = HeaderList(vec![(
                "authorization".into(),
                b"Bearer cwt=AAEBsecretToken".to_vec(),
            )]);
            ex.status = Some(200);
        }
        // No runtime here: each finish completes inline, the later request first.
        user.finish(None);
        token.finish(None);
        // Every handle on the recorder (and so on the writer's sink) goes before the writer
        // can finish.
        drop((user, token, recorder));
        let all = stored(&dir, writer);
        let body = String::from_utf8(all[0].response_body.clone()).unwrap();
        let placeholder = body
            .split('"')
            .find(|p| p.starts_with("cwt=REDACTED-"))
            .unwrap()
            .to_string();
        assert_eq!(
            all[1].request_headers.get("authorization"),
            Some(format!("Bearer {placeholder}").as_str())
        );
        // username and password were revealed first.
        assert_eq!(placeholder, "cwt=REDACTED-3", "{body}");
    }

    /// A conversation's link is followed as soon as its response arrives, and that
    /// response's record finishes last: the followed request is still classified by the rel
    /// that led to it, because kinds are decided on arrival from what was learned on the
    /// client's path.
    #[test]
    fn kinds_follow_the_order_the_client_saw_the_links() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let recorder = recorder(&writer);
        let app = "/ucwa/oauth/v1/applications/1";
        let mut parent = recorder.begin("GET", &format!("{app}/communication/conversations/9"));
        {
            let ex = parent.exchange().unwrap();
            ex.method = "GET".into();
            ex.path = format!("{app}/communication/conversations/9");
            ex.status = Some(200);
            ex.response_headers =
                HeaderList(vec![("content-type".into(), b"application/json".to_vec())]);
        }
        let link = format!(r#"{{"_links":{{"participantMessaging":{{"href":"{app}/pm/7"}}}}}}"#);
        parent.set_response_body(link.as_bytes(), None);
        // The response's last byte is about to go out (what the response tap does).
        parent.learn();
        let mut child = recorder.begin("GET", &format!("{app}/pm/7"));
        {
            let ex = child.exchange().unwrap();
            ex.method = "GET".into();
            ex.path = format!("{app}/pm/7");
            ex.status = Some(200);
        }
        // No runtime: each finish completes inline, the child first.
        child.finish(None);
        parent.finish(None);
        drop((child, parent, recorder));
        let all = stored(&dir, writer);
        assert_eq!(all[0].kind, ResourceKind::Conversation);
        assert_eq!(
            all[1].kind,
            ResourceKind::ParticipantMessaging,
            "{:?}",
            all[1].path
        );
    }
}
