//! How the provider reaches the hub: its address, TLS for `https://` (system and webpki roots, a
//! private CA, a client certificate for mTLS; the `tls` feature), and the warning when the token
//! would travel in clear text.

use std::net::IpAddr;

use crate::config::{Config, HubUrl};
use crate::error::Error;
use crate::hub_connection::HubTarget;

/// The hub the configuration names, with TLS for `https://`. Warns once when the token would
/// cross the network unencrypted.
pub(crate) fn endpoint(config: &Config) -> Result<HubTarget, Error> {
    let url = config.hub_url();
    let failed = |reason: String| Error::Endpoint {
        url: url.to_string(),
        reason,
    };
    let uri = url
        .as_str()
        .parse::<tonic::codegen::http::Uri>()
        .map_err(|e| failed(e.to_string()))?;
    let target = HubTarget::plain(&uri).map_err(failed)?;
    // Without the `tls` feature there is no https:// address here: `Config` refuses one.
    #[cfg(feature = "tls")]
    if url.is_tls() {
        let tls = config.hub_tls();
        let client = tls.client_config().map_err(failed)?;
        return target.with_tls(client, tls.server_name()).map_err(failed);
    }
    if sends_token_in_clear(url) {
        tracing::warn!(
            hub = %url,
            "the hub address is plain http and not a loopback address: the provider's token \
             travels in clear text; use an https:// address"
        );
    }
    Ok(target)
}

/// True when a plain (not `https://`) hub address leaves this machine, so the token sent with
/// every call could be read on the way.
pub(crate) fn sends_token_in_clear(url: &HubUrl) -> bool {
    if url.is_tls() {
        return false;
    }
    let host = url
        .as_str()
        .parse::<tonic::codegen::http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned));
    !host.is_some_and(|host| is_loopback_host(&host))
}

/// True for `localhost` and loopback addresses (`127.0.0.0/8`, `::1`, also written `[::1]` or
/// IPv4-mapped).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "hub-grpc",
            "10.0.0.1",
            "192.168.1.10",
            "[::2]",
            "::",
            "0.0.0.0",
            "localhost.example.com",
            "my-localhost",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn clear_text_token_decision() {
        let clear = |url: &str| sends_token_in_clear(&HubUrl::parse(url).unwrap());
        assert!(clear("hub-grpc:50051"));
        assert!(clear("http://10.1.2.3:50051"));
        assert!(clear("http://[2001:db8::1]:50051"));
        assert!(!clear("127.0.0.1:50051"));
        assert!(!clear("http://localhost:50051"));
        assert!(!clear("http://[::1]:50051"));
        assert!(!clear("https://hub.example.com"));
    }

    /// The transport takes every plain address the configuration accepts. A TLS one can still
    /// be refused here (`https://0` names no host a certificate can be for); the runtime reports
    /// that as an error when it starts, naming the address.
    fn transport_takes(text: &str) {
        let Ok(url) = HubUrl::parse(text) else {
            return;
        };
        let config = Config::builder()
            .auth_token("t")
            .hub_url(text)
            .build()
            .unwrap_or_else(|e| panic!("{text:?} parses but the configuration refuses it: {e}"));
        match endpoint(&config) {
            Ok(_) => {}
            Err(error) if url.is_tls() => assert!(error.to_string().contains(url.as_str())),
            Err(error) => {
                panic!("{text:?} is accepted as {url}, but the transport refuses it: {error}")
            }
        }
    }

    #[test]
    fn an_address_with_no_host_for_a_certificate_is_refused_at_start() {
        transport_takes("https://0");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn the_transport_takes_every_plain_address_the_configuration_accepts(
            text in proptest::prop_oneof![
                ".{0,32}",
                "(http://|https://|ftp://|HTTP://|)([a-z0-9.-]{0,8}|\\[::1\\]|[^/]{0,6})(:[0-9]{0,6})?(/.{0,4})?\\s?",
            ],
        ) {
            transport_takes(&text);
        }
    }
}
