//! Which keys of a Kafka stream map go where: the librdkafka properties passed through,
//! those Riffle owns, the consumer-group settings, the refused ones, Pinot's own keys and
//! its legacy ones. [`crate::config`] sorts a table's keys with these lists.

/// librdkafka properties (global and consumer) passed through under the same name.
///
/// Left out on purpose: callbacks and pointers (`*_cb`, `opaque`, ...), properties that load
/// code or run commands (`plugin.library.paths`, `interceptors`, `ssl.engine.location`,
/// `sasl.kerberos.kinit.cmd`), consumer-group settings (partitions are assigned
/// explicitly), producer settings, and what Riffle owns (see [`OWNED`]).
pub const PASS_THROUGH: &[&str] = &[
    "message.max.bytes",
    "message.copy.max.bytes",
    "receive.message.max.bytes",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "metadata.recovery.strategy",
    "metadata.recovery.rebootstrap.trigger.ms",
    "topic.metadata.refresh.interval.ms",
    "metadata.max.age.ms",
    "topic.metadata.refresh.fast.interval.ms",
    "topic.metadata.refresh.sparse",
    "topic.metadata.propagation.max.ms",
    "debug",
    "socket.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.max.fails",
    "broker.address.ttl",
    "broker.address.family",
    "socket.connection.setup.timeout.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "log_level",
    "log.connection.close",
    "api.version.request",
    "api.version.request.timeout.ms",
    "api.version.fallback.ms",
    "broker.version.fallback",
    "security.protocol",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.ca.certificate.stores",
    "ssl.crl.location",
    "ssl.keystore.password",
    "ssl.providers",
    "ssl.engine.id",
    "enable.ssl.certificate.verification",
    "sasl.mechanisms",
    "sasl.mechanism",
    "sasl.kerberos.service.name",
    "sasl.kerberos.principal",
    "sasl.kerberos.keytab",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "enable.sasl.oauthbearer.unsecure.jwt",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.credentials.client.id",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.grant.type",
    "sasl.oauthbearer.assertion.algorithm",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "sasl.oauthbearer.assertion.file",
    "sasl.oauthbearer.assertion.claim.aud",
    "sasl.oauthbearer.assertion.claim.exp.seconds",
    "sasl.oauthbearer.assertion.claim.iss",
    "sasl.oauthbearer.assertion.claim.jti.include",
    "sasl.oauthbearer.assertion.claim.nbf.seconds",
    "sasl.oauthbearer.assertion.claim.sub",
    "sasl.oauthbearer.assertion.jwt.template.file",
    "sasl.oauthbearer.metadata.authentication.type",
    "client.rack",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "client.dns.lookup",
    "enable.metrics.push",
    "allow.auto.create.topics",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "check.crcs",
];

/// Client keys Riffle sets itself; a value in the map is overridden. Pinot overrides the
/// same ones (bootstrap servers, client id, deserializers) except the consumer-group ones,
/// which Riffle does not use: it keeps offsets in its catalog.
pub const OWNED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "key.deserializer",
    "value.deserializer",
    "enable.partition.eof",
];

/// Consumer-group settings: without effect, partitions are assigned explicitly.
pub(crate) const GROUP_KEYS: &[&str] = &[
    "group.id",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "coordinator.query.interval.ms",
    "internal.leave.group.on.close",
];

/// Consumer-group settings a stream-level table's group consumer honours (the group id is
/// `stream.kafka.hlc.group.id`; committing stays off).
pub(crate) const GROUP_TUNING: &[&str] = &[
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
];

/// Properties refused because a table config must not load code or run commands on the
/// server, or because they are callbacks.
pub(crate) const REFUSED: &[&str] = &[
    "plugin.library.paths",
    "interceptors",
    "ssl.engine.location",
    "sasl.kerberos.kinit.cmd",
    "builtin.features",
    "statistics.interval.ms",
    "enabled_events",
    "log.queue",
    "log.thread.name",
    "enable.random.seed",
    "internal.termination.signal",
    "ssl_engine_callback_data",
    "opaque",
    "default_topic_conf",
];

/// Keys of Pinot's legacy (kafka 0.9) consumer that its kafka30 consumer parses and ignores.
pub(crate) const PINOT_LEGACY: &[&str] = &[
    "buffer.size",
    "socket.timeout",
    "fetcher.size",
    "fetcher.minBytes",
    "hlc.zk.connect.string",
    "zk.broker.url",
];

/// Pinot keys of the `stream.kafka.` namespace this plugin or the server honours.
pub(crate) const HONOURED: &[&str] = &[
    "topic.name",
    "broker.list",
    "decoder.class.name",
    "consumer.factory.class.name",
    "consumer.type",
    "consumer.prop.auto.offset.reset",
    "connection.timeout.millis",
    "fetch.timeout.millis",
    "idle.timeout.millis",
    "isolation.level",
    "metadata.populate",
    "partition.ids",
    "hlc.bootstrap.server",
    "hlc.group.id",
];

/// Keys outside `stream.*` and `realtime.*` that the server itself reads.
pub(crate) const SERVER_KEYS: &[&str] = &[
    "streamType",
    "stopOnDecodeError",
    "partition.consumption.rate.limit",
    "topic.consumption.rate.limit",
];

/// Pinot's keys of TLS material given inline (under `stream.kafka.`).
pub(crate) const PINOT_SSL: &[&str] = &[
    "ssl.server.certificate",
    "ssl.client.certificate",
    "ssl.client.key",
    "ssl.certificate.type",
    "ssl.client.key.algorithm",
];
