//! `pole-ods serve [--bind ADDR] [--mllp ADDR]`: the HTTP API over the store and, with
//! `--mllp`, an HL7 v2 MLLP listener in the same process.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use pole_api::{create_app, ApiConfig, AppState};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, env = "POLE_BIND", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
    /// Also listen for HL7 v2 messages over MLLP on this address (port 0 picks a free port).
    /// Each message is acknowledged (AA, AE or AR) only after its transaction is durable
    #[arg(long, value_name = "ADDR")]
    pub mllp: Option<String>,
}

/// How long a client may take to send a request's head.
const CLIENT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long in-flight requests may take to finish once a stop is asked for.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

fn announce(addrs: &[std::net::SocketAddr]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for addr in addrs {
        writeln!(out, "listening on http://{addr}")?;
    }
    if let Some(addr) = addrs.first() {
        writeln!(out, "  health:   http://{addr}/health")?;
        writeln!(out, "  entities: http://{addr}/v1/entities?type=person&limit=5")?;
        writeln!(out, "  metrics:  http://{addr}/metrics")?;
        writeln!(out, "  API docs: http://{addr}/docs (OpenAPI at /openapi.json)")?;
    }
    out.flush()
}

pub fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let store = super::open_store(config)?;
    serve(config, args, store, |_| Ok(()))
}

/// Serves an open store until SIGINT/SIGTERM; `after_bind` runs once the addresses are
/// printed (the demo prints its tokens and examples there).
pub fn serve(
    config: &Config,
    args: &ServeArgs,
    store: pole_store::Store,
    after_bind: impl FnOnce(&[std::net::SocketAddr]) -> std::io::Result<()>,
) -> anyhow::Result<ExitCode> {
    let api_config = ApiConfig { metrics_public: config.auth.metrics_public, ..ApiConfig::default() };
    let access = crate::access::control(config, store.schema())?;
    let log = access.log().clone();
    let mllp_log = log.clone();
    let state = AppState::new(store.clone(), access).context("setting up metrics")?;
    let mllp_store = store.clone();
    let served = actix_web::rt::System::new().block_on(async move {
        let app_config = api_config.clone();
        // actix's own default, named so the store threads can be shared out among them.
        let workers = crate::config::cores();
        let server = actix_web::HttpServer::new(move || create_app(state.clone(), app_config.clone()))
            .workers(workers)
            .worker_max_blocking_threads(config.store_threads.div_ceil(workers))
            // A client has this long to send its request head (then 408), and in-flight
            // requests this long to finish after SIGINT/SIGTERM.
            .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
            .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
            .bind(&args.bind)
            .with_context(|| format!("binding {}", args.bind))?;
        // Bound before anything is announced, so a printed address is one that accepts.
        let mllp = match &args.mllp {
            Some(addr) => Some(mllp::bind(addr).await?),
            None => None,
        };
        let addrs = server.addrs();
        // Best effort: a reader that closed our stdout must not stop the server.
        if let Err(e) = announce(&addrs).and_then(|()| after_bind(&addrs)) {
            tracing::warn!(error = %e, "could not print the listening addresses");
        }
        if let Some(listener) = mllp {
            let addr = listener.local_addr().context("reading the MLLP address")?;
            let printed = writeln!(std::io::stdout().lock(), "mllp listening on {addr}");
            if let Err(e) = printed.and_then(|()| std::io::stdout().flush()) {
                tracing::warn!(error = %e, "could not print the MLLP address");
            }
            // On this (the system's) thread: it only waits on sockets; store work goes to
            // the blocking pool. It ends with the system when the HTTP server stops.
            actix_web::rt::spawn(mllp::accept_loop(listener, mllp_store, mllp_log, config.mllp));
        }
        // actix finishes in-flight requests on SIGINT/SIGTERM before returning.
        server.run().await.context("serving")
    });
    log.flush().context("flushing the access log")?;
    store.close()?;
    served?;
    Ok(ExitCode::SUCCESS)
}

/// The MLLP listener: frames in, one transaction a message, one ACK a message.
///
/// Order and durability: a connection's messages are handled one after another (the next
/// frame is not looked at before the previous one's ACK is written), and an AA is written
/// only after `Store::commit` returned `Ok`, i.e. after the journal was synced. A resent
/// control id is acknowledged AA again without a second change (the store's idempotency
/// key). Across connections, and with every other ingest of the process (HTTP, a file),
/// look-up and commit run under the ingest crate's resolution lock, so two senders
/// announcing the same new patient at once cannot both miss the look-up and create two.
///
/// Limits (`MllpConfig`): at most `max_connections` connections are served at once; one
/// more is closed as soon as it is accepted, with a warning, rather than queued (a sender
/// retries, and a flood cannot exhaust file descriptors). A connection that sends nothing
/// and takes no ACK for `idle_timeout_secs` is closed; time spent applying a message does
/// not count, since the sender is then waiting for us.
mod mllp {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use actix_web::rt::net::{TcpListener, TcpStream};
    use anyhow::Context;
    use pole_ingest::hl7::{self, AckCode, AckError, MllpDecoder, DEFAULT_MAX_FRAME};
    use pole_ingest::hl7_ingest::{process_message, MessageContext, MessageOutcome, Processed};
    use pole_model::{Operation, Timestamp};
    use pole_store::{AccessAction, AccessEntry, AccessLog, AccessOutcome, Store};

    use crate::config::MllpConfig;

    /// Bytes read from a socket at a time.
    const READ_CHUNK: usize = 64 * 1024;
    /// Who the journal and the access log say wrote a message: senders are trusted by
    /// network, not by token, so the listener itself is the actor (the access log adds the
    /// peer's address).
    const ACTOR: &str = "mllp";
    const ROLE: &str = "system";

    pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
        TcpListener::bind(addr).await.with_context(|| format!("binding the MLLP listener to {addr}"))
    }

    /// What every connection shares.
    struct Shared {
        store: Store,
        /// Every message is a write: it is traced like any other.
        log: AccessLog,
        /// The ACKs' own MSH-10: unique within the process, and across restarts since it
        /// starts from the clock.
        next_ack: AtomicU64,
        /// Connections being served now.
        open: AtomicUsize,
        idle_timeout: Duration,
    }

    /// Counts a connection as open until dropped, however its task ends.
    struct OpenConnection(Arc<Shared>);

    impl Drop for OpenConnection {
        fn drop(&mut self) {
            self.0.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub async fn accept_loop(listener: TcpListener, store: Store, log: AccessLog, limits: MllpConfig) {
        let seed = u64::try_from(Timestamp::now().micros()).unwrap_or_default();
        let shared = Arc::new(Shared {
            store,
            log,
            next_ack: AtomicU64::new(seed),
            open: AtomicUsize::new(0),
            idle_timeout: Duration::from_secs(limits.idle_timeout_secs),
        });
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    // Only this loop adds to `open`, so the check and the add cannot race
                    // with another accept; closing connections only make room.
                    let open = shared.open.fetch_add(1, Ordering::AcqRel);
                    let guard = OpenConnection(shared.clone());
                    if open >= limits.max_connections {
                        tracing::warn!(
                            %peer,
                            max_connections = limits.max_connections,
                            "mllp connection refused: too many connections open; closed at once"
                        );
                        drop(stream);
                        drop(guard);
                        continue;
                    }
                    tracing::info!(%peer, "mllp connection");
                    let shared = shared.clone();
                    actix_web::rt::spawn(async move {
                        let _open = guard;
                        match connection(stream, peer, shared).await {
                            Ok(messages) => tracing::info!(%peer, messages, "mllp connection closed"),
                            Err(e) => tracing::warn!(%peer, error = %e, "mllp connection ended"),
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: pause rather than spin.
                    tracing::warn!(error = %e, "mllp accept failed");
                    actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Serves one connection until the peer closes it; answers how many messages it sent.
    async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) -> io::Result<u64> {
        let mut decoder = MllpDecoder::new(DEFAULT_MAX_FRAME);
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut messages = 0u64;
        loop {
            loop {
                let ack = match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        messages += 1;
                        handle(&shared, frame, messages, peer).await
                    }
                    Ok(None) => break,
                    Err(too_large) => {
                        tracing::warn!(%peer, "{too_large}");
                        let error = AckError::application(too_large.to_string());
                        hl7::build_ack_for_bytes(b"", AckCode::Reject, Some(&error), &next_ack(&shared), now())
                    }
                };
                let ack = hl7::encode_frame(ack.as_bytes());
                // A sender that stops reading its ACKs is as idle as one that stops writing.
                match actix_web::rt::time::timeout(shared.idle_timeout, write_all(&stream, &ack)).await {
                    Ok(written) => written?,
                    Err(_) => return Err(idle(shared.idle_timeout)),
                }
            }
            match actix_web::rt::time::timeout(shared.idle_timeout, stream.readable()).await {
                Ok(ready) => ready?,
                Err(_) => {
                    tracing::info!(%peer, messages, "mllp connection idle: closed");
                    return Ok(messages);
                }
            }
            match stream.try_read(&mut buffer) {
                Ok(0) => return Ok(messages),
                Ok(n) => decoder.push(buffer.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies one message on the blocking pool and answers its ACK (unframed).
    async fn handle(shared: &Arc<Shared>, frame: Vec<u8>, row: u64, peer: SocketAddr) -> String {
        let worker = shared.clone();
        let applied = actix_web::rt::task::spawn_blocking(move || {
            let text = hl7::decode_text(&frame).into_owned();
            // A facility's own feed: its messages change its own records only (the store's
            // rule), and its A40s merge its own patients.
            let context = MessageContext {
                council: None,
                file: None,
                row,
                actor: ACTOR,
                role: ROLE,
                dry_run: false,
                operations: &Operation::ALL,
            };
            // One message at a time from look-up to commit: `process_message` holds the
            // ingest crate's resolution lock, which HTTP and command-line ingests share.
            let processed = process_message(&worker.store, &text, &context);
            let traced = match &processed {
                Ok(processed) => trace(&worker.log, processed, peer),
                Err(_) => Ok(()),
            };
            (frame, processed, traced)
        })
        .await;
        let ack_id = next_ack(shared);
        match applied {
            Ok((frame, Ok(processed), traced)) => {
                if let Err(e) = &traced {
                    let control_id = processed.control_id.as_str();
                    tracing::error!(%peer, control_id, error = %e, "mllp: the access log could not record a message");
                }
                log(&processed, peer);
                let (code, error) = answer(&processed.outcome, traced.map_err(|e| e.to_string()));
                processed.ack_as(code, error.as_ref(), &frame, &ack_id, now())
            }
            // The store failed (or is shutting down): nothing is acknowledged as applied. AR
            // tells the sender to keep the message and try again; a resend after a commit
            // that did land is answered AA by its idempotency key.
            Ok((frame, Err(e), _)) => {
                tracing::error!(%peer, error = %e, "mllp: the store could not take a message");
                let error = AckError::application(format!("the store could not take the message now ({e}): resend it"));
                hl7::build_ack_for_bytes(&frame, AckCode::Reject, Some(&error), &ack_id, now())
            }
            Err(e) => {
                tracing::error!(%peer, error = %e, "mllp: the message handler failed");
                let error = AckError::application("internal error: resend the message");
                hl7::build_ack_for_bytes(b"", AckCode::Reject, Some(&error), &ack_id, now())
            }
        }
    }

    /// MSA-1 and the ERR segment of a message's ACK, from what became of it and whether its
    /// access record was written. No answer without its trace: an acceptance (AA) whose
    /// record could not be written is answered AE instead, asking for a resend. The
    /// transaction was durable before the record was attempted, so the resend changes
    /// nothing: it is answered "already applied" (AA) by its control id once the log takes
    /// records again, and that answer's own record is written first. A refusal keeps its
    /// code and reason: it disclosed and changed nothing, and resending an AR'd message
    /// would not help.
    fn answer(outcome: &MessageOutcome, traced: Result<(), String>) -> (AckCode, Option<AckError>) {
        match (outcome.ack_code(), traced) {
            (AckCode::Accept, Err(e)) => (
                AckCode::Error,
                Some(AckError::application(format!(
                    "the access record of this message could not be written ({e}): resend it"
                ))),
            ),
            (code, _) => (code, outcome.ack_error()),
        }
    }

    /// One line per message, without its content (it identifies a patient).
    fn log(processed: &Processed, peer: SocketAddr) {
        let code = processed.outcome.ack_code().as_str();
        let control_id = processed.control_id.as_str();
        match processed.outcome.ack_error() {
            None => tracing::info!(%peer, control_id, code, "mllp message"),
            Some(error) => tracing::warn!(%peer, control_id, code, reason = %error.text, "mllp message not applied"),
        }
    }

    /// The message's access record (MLLP senders are trusted by network, not by token: the
    /// peer address is the actor). Durable before the ACK is written.
    fn trace(log: &AccessLog, processed: &Processed, peer: SocketAddr) -> pole_store::Result<()> {
        let (entities, outcome) = match &processed.outcome {
            MessageOutcome::Committed(committed) => {
                (committed.refs.values().cloned().collect(), AccessOutcome::Allowed)
            }
            MessageOutcome::AlreadyApplied { .. } | MessageOutcome::Planned { .. } => {
                (Vec::new(), AccessOutcome::Allowed)
            }
            _ => (
                Vec::new(),
                AccessOutcome::Denied {
                    detail: processed.outcome.ack_error().map(|e| e.text).unwrap_or_else(|| "not applied".into()),
                },
            ),
        };
        let mut entry = AccessEntry::new(format!("{ACTOR} {peer}"), ROLE, AccessAction::Write, "MLLP message");
        entry.entities = entities;
        entry.query = Some(format!("control id {}", processed.control_id));
        entry.outcome = outcome;
        log.record_durably(entry)
    }

    fn idle(limit: Duration) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, format!("no ACK could be written for {} s: closed", limit.as_secs()))
    }

    fn next_ack(shared: &Shared) -> String {
        format!("A{}", shared.next_ack.fetch_add(1, Ordering::Relaxed))
    }

    fn now() -> Timestamp {
        Timestamp::now()
    }

    async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            stream.writable().await?;
            match stream.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use std::collections::BTreeMap;

        use pole_ingest::hl7::Hl7Error;
        use pole_store::{AccessQuery, BackendKind, Committed, Rejection, StoreOptions};

        use super::*;

        /// MSA-1 and MSA-3 of an ACK.
        fn msa(ack: &str) -> (String, String) {
            let line = ack.split('\r').find(|s| s.starts_with("MSA|")).unwrap_or_default();
            let fields: Vec<&str> = line.split('|').collect();
            let at = |i: usize| fields.get(i).copied().unwrap_or_default().to_owned();
            (at(1), at(3))
        }

        #[test]
        fn an_acceptance_whose_access_record_failed_is_ae_and_a_refusal_keeps_its_code() {
            let committed = MessageOutcome::Committed(Committed {
                seq: 1,
                recorded_at: Timestamp::from_micros(0),
                hash: pole_audit::Hash::GENESIS,
                changes: 1,
                refs: BTreeMap::new(),
                replayed: false,
            });
            let failed = || Err("disk full".to_owned());
            for outcome in
                [committed, MessageOutcome::AlreadyApplied { seq: 1 }, MessageOutcome::Planned { changes: 2 }]
            {
                assert_eq!(answer(&outcome, Ok(())), (AckCode::Accept, None));
                let (code, error) = answer(&outcome, failed());
                assert_eq!(code, AckCode::Error, "{outcome:?}");
                let text = error.map(|e| e.text).unwrap_or_default();
                assert!(
                    text.contains("access record") && text.contains("disk full") && text.contains("resend"),
                    "{text}"
                );
            }
            let refused = MessageOutcome::Refused(Rejection::Transaction { reason: "no".into() });
            assert_eq!(answer(&refused, failed()), (AckCode::Error, refused.ack_error()));
            let unreadable = MessageOutcome::Unreadable(Hl7Error::Empty);
            assert_eq!(answer(&unreadable, failed()), (AckCode::Reject, unreadable.ack_error()));
        }

        #[test]
        fn a_message_whose_access_record_cannot_be_written_is_answered_ae_and_its_resend_aa() {
            let dir = tempfile::tempdir().unwrap();
            let options = StoreOptions { backend: BackendKind::Memory, ..StoreOptions::default() };
            let store = Store::open(dir.path().join("store"), options).unwrap();
            let audit = dir.path().join("audit");
            let message = "MSH|^~\\&|PAS|RR8|POLE|LEEDS|20240715093000||ADT^A28|MLLP-1|P|2.4\r\
                           EVN|A28|20240715093000\r\
                           PID|1||9990000018^^^NHS^NH||Smith^Margaret^^^Mrs^^L||19400312|F\r";
            let peer: SocketAddr = "127.0.0.1:2575".parse().unwrap();
            let shared = |log: AccessLog| {
                Arc::new(Shared {
                    store: store.clone(),
                    log,
                    next_ack: AtomicU64::new(1),
                    open: AtomicUsize::new(0),
                    idle_timeout: Duration::from_secs(60),
                })
            };
            let closed = AccessLog::open(&audit).unwrap();
            closed.close().unwrap();
            let closed = shared(closed);
            let first = actix_web::rt::System::new().block_on(handle(&closed, message.as_bytes().to_vec(), 1, peer));
            let (code, text) = msa(&first);
            assert_eq!(code, "AE", "{first:?}");
            assert!(text.contains("access record") && text.contains("resend"), "{text}");
            assert!(first.contains("\rERR|"), "{first:?}");
            // The transaction is durable all the same.
            assert_eq!(store.head().seq, 1);

            // Once records can be written again, the resend is already applied: AA, nothing
            // written to the journal, and this time the access record is there.
            let log = AccessLog::open(&audit).unwrap();
            let working = shared(log.clone());
            let again = actix_web::rt::System::new().block_on(handle(&working, message.as_bytes().to_vec(), 1, peer));
            assert_eq!(msa(&again), ("AA".to_owned(), String::new()), "{again:?}");
            assert_eq!(store.head().seq, 1);
            let records = log.query(&AccessQuery { limit: 10, ..AccessQuery::default() }).unwrap();
            assert_eq!(records.len(), 1, "{records:?}");
            assert_eq!(records[0].entry.query.as_deref(), Some("control id MLLP-1"));
            store.close().unwrap();
        }
    }
}
