//! TLS settings for an `https://` hub: where they come from (`HUB_TLS_*` or the builder), the
//! files read and checked at start, and the client configuration they make.

#[cfg(feature = "tls")]
use std::fmt;
#[cfg(feature = "tls")]
use std::path::Path;
use std::path::PathBuf;

#[cfg(feature = "tls")]
use rustls::RootCertStore;
#[cfg(feature = "tls")]
use rustls::pki_types::pem::PemObject;
#[cfg(feature = "tls")]
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
#[cfg(feature = "tls")]
use std::sync::Arc;

use super::{ConfigError, HubUrl, env};

/// A PEM file read at start. `Debug` shows its path only, never its contents: for the client
/// key the contents are a secret.
#[cfg(feature = "tls")]
#[derive(Clone)]
struct PemFile {
    path: PathBuf,
    contents: Vec<u8>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PemFile({:?})", self.path)
    }
}

/// A client certificate and its key, for hubs that require mTLS.
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
struct ClientIdentity {
    cert: PemFile,
    key: PemFile,
}

/// TLS settings for an `https://` hub, checked and read at start (see [`env`](mod@crate::config::env)'s `HUB_TLS_*`).
#[cfg(feature = "tls")]
#[derive(Clone, Debug, Default)]
pub struct HubTls {
    ca: Option<PemFile>,
    client: Option<ClientIdentity>,
    server_name: Option<String>,
}

#[cfg(feature = "tls")]
impl HubTls {
    /// The private CA file trusted besides the system and webpki roots.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_ref().map(|f| f.path.as_path())
    }

    /// The client certificate file sent to hubs that require mTLS.
    pub fn client_cert_file(&self) -> Option<&Path> {
        self.client.as_ref().map(|c| c.cert.path.as_path())
    }

    /// The name checked in the hub's certificate instead of the address's host.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The TLS client settings: webpki roots, the system's roots when it has any, the private
    /// CA, the client certificate, and HTTP/2 asked for by ALPN (gRPC needs it). The files were
    /// checked when they were read; an error here names no file's contents.
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs().certs;
        if native.is_empty() {
            tracing::debug!("the system has no root certificates; trusting webpki roots only");
        }
        roots.add_parsable_certificates(native);
        if let Some(ca) = &self.ca {
            for cert in CertificateDer::pem_slice_iter(&ca.contents).flatten() {
                roots
                    .add(cert)
                    .map_err(|e| format!("the private CA cannot be trusted: {e}"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("no TLS version to offer: {e}"))?
            .with_root_certificates(roots);
        let mut config = match &self.client {
            None => builder.with_no_client_auth(),
            Some(client) => {
                let chain = CertificateDer::pem_slice_iter(&client.cert.contents)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        "the client certificate is not a well-formed PEM file".to_owned()
                    })?;
                let key = PrivateKeyDer::from_pem_slice(&client.key.contents)
                    .map_err(|_| "the client key holds no PEM private key".to_owned())?;
                // rustls' message names the key's kind, never its bytes.
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the client certificate and key cannot be used: {e}"))?
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

/// Where the TLS settings come from: paths and names as given, each with the variable (or
/// builder method) that gave it, read and checked by `TlsSources::load` (or, without the `tls`
/// feature, refused by `TlsSources::refuse`).
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSources {
    pub(crate) ca_file: Option<(&'static str, PathBuf)>,
    pub(crate) cert_file: Option<(&'static str, PathBuf)>,
    pub(crate) key_file: Option<(&'static str, PathBuf)>,
    pub(crate) server_name: Option<(&'static str, String)>,
}

impl TlsSources {
    /// The `HUB_TLS_*` variables; an empty value counts as unset.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        };
        let path = |name| set(name).map(|(n, v)| (n, PathBuf::from(v)));
        Self {
            ca_file: path(env::HUB_TLS_CA_FILE),
            cert_file: path(env::HUB_TLS_CERT_FILE),
            key_file: path(env::HUB_TLS_KEY_FILE),
            server_name: set(env::HUB_TLS_SERVER_NAME),
        }
    }

    /// The variables (or builder methods) that gave a setting.
    fn given(&self) -> Vec<&'static str> {
        [
            self.ca_file.as_ref().map(|s| s.0),
            self.cert_file.as_ref().map(|s| s.0),
            self.key_file.as_ref().map(|s| s.0),
            self.server_name.as_ref().map(|s| s.0),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Without the `tls` feature: an https:// address or any TLS setting is an error that says
    /// to turn the feature on, never a plain connection in its place.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn refuse(self, url_source: &str, url: &HubUrl) -> Result<(), ConfigError> {
        let given = self.given();
        let needed_by = if url.is_tls() {
            format!("{url_source}={url}")
        } else if !given.is_empty() {
            given.join(", ")
        } else {
            return Ok(());
        };
        Err(ConfigError::FeatureOff {
            feature: "tls",
            needed_by,
        })
    }

    /// Checks the settings against the hub address and reads the files.
    #[cfg(feature = "tls")]
    pub(crate) fn load(self, url_source: &str, url: &HubUrl) -> Result<HubTls, ConfigError> {
        let given = self.given();
        if given.is_empty() {
            return Ok(HubTls::default());
        }
        if !url.is_tls() {
            return Err(ConfigError::Tls(format!(
                "TLS settings are given ({}), but {url_source}={url} is not an https:// \
                 address: they apply only to a hub reached over TLS; write https://host:port",
                given.join(", ")
            )));
        }
        let client = match (self.cert_file, self.key_file) {
            (None, None) => None,
            (Some((cert_source, cert)), Some((key_source, key))) => {
                let cert = read_pem(cert_source, cert)?;
                certificates(cert_source, &cert)?;
                let key = read_pem(key_source, key)?;
                if PrivateKeyDer::from_pem_slice(&key.contents).is_err() {
                    return Err(file_error(
                        key_source,
                        &key.path,
                        "it holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    ));
                }
                Some(ClientIdentity { cert, key })
            }
            (Some((given, _)), None) | (None, Some((given, _))) => {
                return Err(ConfigError::Tls(format!(
                    "{given} is set but {} is not: a client certificate and its private key go \
                     together; set both or neither",
                    missing_pair(given)
                )));
            }
        };
        let ca = match self.ca_file {
            None => None,
            Some((source, path)) => {
                let ca = read_pem(source, path)?;
                let mut roots = RootCertStore::empty();
                for cert in certificates(source, &ca)? {
                    roots.add(cert).map_err(|e| {
                        file_error(
                            source,
                            &ca.path,
                            &format!(
                                "a certificate in it is not a CA certificate rustls can trust: {e}"
                            ),
                        )
                    })?;
                }
                Some(ca)
            }
        };
        let server_name = match self.server_name {
            None => None,
            Some((source, name)) => {
                ServerName::try_from(name.as_str()).map_err(|_| ConfigError::Invalid {
                    variable: source,
                    value: name.clone(),
                    reason: "give a DNS name (hub.internal) or an IP address".into(),
                })?;
                Some(name)
            }
        };
        Ok(HubTls {
            ca,
            client,
            server_name,
        })
    }
}

/// The name of the other half of the certificate/key pair, spelled as `given` is (variable or
/// builder method).
#[cfg(feature = "tls")]
fn missing_pair(given: &str) -> &'static str {
    match given {
        env::HUB_TLS_CERT_FILE => env::HUB_TLS_KEY_FILE,
        env::HUB_TLS_KEY_FILE => env::HUB_TLS_CERT_FILE,
        "tls_cert_file" => "tls_key_file",
        _ => "tls_cert_file",
    }
}

#[cfg(feature = "tls")]
fn file_error(variable: &'static str, path: &Path, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: path.display().to_string(),
        reason: reason.to_owned(),
    }
}

/// Reads a PEM file. Errors name the variable and the path, never the contents.
#[cfg(feature = "tls")]
fn read_pem(variable: &'static str, path: PathBuf) -> Result<PemFile, ConfigError> {
    match std::fs::read(&path) {
        Ok(contents) => Ok(PemFile { path, contents }),
        Err(e) => Err(file_error(
            variable,
            &path,
            &format!("the file cannot be read: {e}"),
        )),
    }
}

/// The certificates in a PEM file: at least one, all well-formed.
#[cfg(feature = "tls")]
fn certificates(
    variable: &'static str,
    file: &PemFile,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(&file.contents)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| file_error(variable, &file.path, "it is not a well-formed PEM file"))?;
    if certs.is_empty() {
        return Err(file_error(
            variable,
            &file.path,
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    fn load(url: &str, vars: &[(&'static str, &str)]) -> Result<HubTls, ConfigError> {
        let sources = TlsSources::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        });
        sources.load(env::HUB_GRPC_URL, &HubUrl::parse(url).unwrap())
    }

    #[test]
    fn no_tls_settings_is_the_default() {
        let tls = load("https://hub.example.com", &[(env::HUB_TLS_CA_FILE, "  ")]).unwrap();
        assert!(tls.ca_file().is_none() && tls.client_cert_file().is_none());
        assert!(tls.server_name().is_none());
    }

    #[test]
    fn tls_settings_need_an_https_address() {
        let err = load(
            "http://hub.internal:50051",
            &[(env::HUB_TLS_SERVER_NAME, "hub.internal")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("HUB_TLS_SERVER_NAME")
                && err.contains("HUB_GRPC_URL")
                && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn a_certificate_without_its_key_names_both() {
        for given in [env::HUB_TLS_CERT_FILE, env::HUB_TLS_KEY_FILE] {
            let err = load("https://hub:1", &[(given, "/nonexistent/file.pem")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("HUB_TLS_CERT_FILE") && err.contains("HUB_TLS_KEY_FILE"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unreadable_file_names_the_variable_and_the_path() {
        let err = load(
            "https://hub:1",
            &[(env::HUB_TLS_CA_FILE, "/nonexistent/ca.pem")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("HUB_TLS_CA_FILE") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_server_name_is_refused() {
        let err = load(
            "https://127.0.0.1:1",
            &[(env::HUB_TLS_SERVER_NAME, "not a name")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("HUB_TLS_SERVER_NAME"), "{err}");
    }
}
