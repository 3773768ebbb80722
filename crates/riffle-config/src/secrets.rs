//! Which config keys hold secrets, and what output shows instead of their values.

/// Whether a config key holds a secret (passwords, JAAS configs with credentials, private
/// keys, tokens, storage keys). Such values never appear in logs, `Debug` output or API
/// output. Keys are matched by their last segments, so that Pinot's prefixes
/// (`stream.kafka.consumer.prop.`, `pinot.controller.storage.factory.s3.`) do not hide them.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const PARTS: [&str; 10] = [
        "password",
        "secret",
        "jaas",
        "passphrase",
        "token",
        "credential",
        "connectionstring",
        "connection.string",
        "accountkey",
        "account.key",
    ];
    // librdkafka's and Kafka's key material, the object stores' keys.
    const ENDINGS: [&str; 12] = [
        "ssl.key.pem",
        "ssl_key",
        "ssl.keystore.key",
        "ssl.client.key",
        "sasl.oauthbearer.config",
        "private.key.pem",
        "privatekey",
        "private.key",
        "accesskey",
        "access.key",
        "apikey",
        "api.key",
    ];
    PARTS.iter().any(|p| k.contains(p)) || ENDINGS.iter().any(|e| k.ends_with(e))
}

/// What API output shows instead of a secret value.
pub const SECRET_MASK: &str = "*****";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_found_behind_prefixes() {
        for k in [
            "sasl.jaas.config",
            "stream.kafka.consumer.prop.sasl.jaas.config",
            "ssl.key.password",
            "stream.kafka.ssl.key.pem",
            "stream.kafka.consumer.prop.ssl.keystore.key",
            "stream.kafka.sasl.oauthbearer.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "ssl.truststore.password",
            "pinot.controller.storage.factory.s3.accessKey",
            "pinot.controller.storage.factory.s3.secretKey",
            "azure.connectionString",
            "stream.kinesis.accessKey",
            "stream.pulsar.authenticationToken",
            "gcs.privateKey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "stream.kafka.topic.name",
            "stream.kafka.broker.list",
            "security.protocol",
            "ssl.ca.location",
            "ssl.certificate.pem",
            "stream.kafka.decoder.prop.key.format",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
