//! The librdkafka client context (log capture) and the mapping of Kafka errors to
//! [`StreamErrorKind`].

use std::time::Instant;

use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use riffle_stream::{StreamError, StreamErrorKind};

/// The consumer type used everywhere in this crate.
pub(crate) type Consumer = BaseConsumer<RiffleContext>;

/// Routes librdkafka's log lines to `tracing` and keeps the last error-level line, so that
/// errors (which librdkafka reports by code only on the consumer queue) can carry the text,
/// e.g. the TLS handshake failure.
pub(crate) struct RiffleContext {
    /// Client id, for logs.
    name: String,
    /// The last error or warning logged by librdkafka and when.
    last_problem: Mutex<Option<(Instant, String)>>,
    /// Set by a transport failure; cleared when a request succeeds again.
    pub(crate) broker_trouble: Mutex<Option<String>>,
}

impl RiffleContext {
    pub(crate) fn new(name: &str) -> RiffleContext {
        RiffleContext {
            name: name.to_string(),
            last_problem: Mutex::new(None),
            broker_trouble: Mutex::new(None),
        }
    }

    /// The last problem librdkafka logged, if recent enough to be about the current call.
    pub(crate) fn last_problem(&self) -> Option<String> {
        self.last_problem
            .lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed().as_secs() < 15)
            .map(|(_, m)| m.clone())
    }
}

impl ClientContext for RiffleContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", client = %self.name, facility = fac, "{log_message}");
                *self.last_problem.lock() = Some((Instant::now(), log_message.to_string()));
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", client = %self.name, facility = fac, "{log_message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", client = %self.name, facility = fac, "{log_message}");
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", client = %self.name, error = %error, "{reason}");
        *self.last_problem.lock() = Some((Instant::now(), reason.to_string()));
    }
}

impl ConsumerContext for RiffleContext {}

/// The class of a librdkafka error code.
pub fn kind_of(code: RDKafkaErrorCode) -> StreamErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::Fail
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::BrokerNotAvailable
        | C::ReplicaNotAvailable
        | C::NetworkException
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::CoordinatorLoadInProgress
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::KafkaStorageError
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::OffsetNotAvailable
        | C::PreferredLeaderNotAvailable
        | C::ThrottlingQuotaExceeded
        | C::NodeUpdate
        | C::UnknownBroker
        | C::Retry
        | C::WaitCache
        | C::InProgress
        | C::PreviousInProgress
        | C::Partial
        | C::Interrupted
        | C::QueueFull
        | C::WaitingForCoordinator => StreamErrorKind::Transient,
        C::OperationTimedOut | C::RequestTimedOut | C::TimedOutQueue | C::MessageTimedOut => {
            StreamErrorKind::Timeout
        }
        C::Authentication
        | C::SSL
        | C::SaslAuthenticationFailed
        | C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::DelegationTokenAuthDisabled
        | C::DelegationTokenAuthorizationFailed => StreamErrorKind::Unauthorized,
        C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition | C::UnknownTopicId => {
            StreamErrorKind::NotFound
        }
        C::OffsetOutOfRange | C::AutoOffsetReset => StreamErrorKind::OffsetOutOfRange,
        C::InvalidArgument | C::InvalidConfig | C::NotConfigured => StreamErrorKind::InvalidConfig,
        C::UnsupportedVersion | C::UnsupportedFeature | C::NotImplemented => {
            StreamErrorKind::Unsupported
        }
        _ => StreamErrorKind::Fatal,
    }
}

/// A stream error for a Kafka error: its class, what was done, the code's description and
/// librdkafka's last logged problem (e.g. the TLS failure text) when relevant.
pub(crate) fn stream_error(what: &str, e: &KafkaError, ctx: Option<&RiffleContext>) -> StreamError {
    let kind = match e {
        KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..) => {
            StreamErrorKind::InvalidConfig
        }
        KafkaError::MessageConsumptionFatal(_) => StreamErrorKind::Fatal,
        other => other
            .rdkafka_error_code()
            .map(kind_of)
            .unwrap_or(StreamErrorKind::Fatal),
    };
    let mut message = match e {
        // The value of a config error may be a secret: name the key only.
        KafkaError::ClientConfig(_, desc, key, _) => {
            format!("{what}: Kafka client setting {key} is not valid: {desc}")
        }
        KafkaError::ClientCreation(s) => format!("{what}: cannot create the Kafka client: {s}"),
        other => match other.rdkafka_error_code() {
            Some(code) => format!("{what}: {code}"),
            None => format!("{what}: {other}"),
        },
    };
    if matches!(
        kind,
        StreamErrorKind::Transient | StreamErrorKind::Timeout | StreamErrorKind::Unauthorized
    ) {
        if let Some(p) = ctx.and_then(RiffleContext::last_problem) {
            message.push_str(&format!(" (librdkafka: {p})"));
        }
    }
    // A TLS or SASL failure reported as a transport error or a timeout is still an
    // authentication problem, which retrying does not fix.
    let kind = match (kind, ctx.and_then(RiffleContext::last_problem)) {
        (StreamErrorKind::Transient | StreamErrorKind::Timeout, Some(p)) if is_auth_failure(&p) => {
            StreamErrorKind::Unauthorized
        }
        (k, _) => k,
    };
    StreamError::new(kind, message)
}

/// Whether a librdkafka error text describes a TLS or SASL failure.
pub(crate) fn is_auth_failure(text: &str) -> bool {
    text.contains("SSL handshake failed")
        // OpenSSL's own error strings ("error:0A00010B:SSL routines::wrong version number").
        || text.contains("SSL routines")
        || text.contains("certificate verify failed")
        || (text.contains("SASL")
            && (text.contains("authentication") || text.contains("handshake failed")))
}
