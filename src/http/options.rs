//! The HTTP client's settings (timeouts, TLS roots, proxy) and the construction of the
//! reqwest client from them.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;
use crate::{Error, Result};
use snowpipe_cli_support::bounded_file::read_into;

/// The most a CA file (`root_ca_file`, `SSL_CERT_FILE`) may hold: a system's whole bundle is
/// about 200 KiB. A path naming a device, a FIFO or a huge file is refused here, not read whole.
pub(crate) const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// Connection settings of a client builder.
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) root_ca_pems: Vec<Secret>,
    pub(crate) root_ca_files: Vec<PathBuf>,
    /// A secret because the URL may carry credentials.
    pub(crate) proxy: Option<Secret>,
    pub(crate) no_proxy: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            root_ca_pems: Vec::new(),
            root_ca_files: Vec::new(),
            proxy: None,
            no_proxy: None,
        }
    }
}

impl HttpOptions {
    /// The reqwest client: rustls with the built-in roots plus any configured CAs (and
    /// `SSL_CERT_FILE`), the timeouts, the proxy (never for this machine's names); HTTP/1.1,
    /// no redirects; `localhost` names resolved without DNS ([`super::host`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the CA file, PEM, proxy or `tls` setting at fault.
    pub(crate) fn build_client(&self) -> Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(true)
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(super::host::LocalhostResolver));
        for pem in &self.root_ca_pems {
            for cert in parse_certs(pem.expose().as_bytes(), "root_ca_pem", "the PEM text")? {
                b = b.add_root_certificate(cert);
            }
        }
        let mut files: Vec<(PathBuf, &str)> = self
            .root_ca_files
            .iter()
            .map(|p| (p.clone(), "root_ca_file"))
            .collect();
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
            files.push((PathBuf::from(f), "SSL_CERT_FILE"));
        }
        for (path, setting) in files {
            let mut bytes = Vec::new();
            read_into(&path, "CA bundle file", MAX_CA_FILE_BYTES, &mut bytes).map_err(|e| {
                Error::config_caused(
                    setting,
                    format!("cannot read the CA file {}", path.display()),
                    e,
                )
            })?;
            for cert in parse_certs(&bytes, setting, &path.display().to_string())? {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some(proxy) = &self.proxy {
            let mut p = reqwest::Proxy::all(proxy.expose()).map_err(|e| {
                Error::config_caused(
                    "proxy",
                    "not a valid proxy URL (e.g. http://proxy.example.com:3128)",
                    e.without_url(),
                )
            })?;
            let no_proxy = match &self.no_proxy {
                Some(list) => format!("{},{list}", super::host::LOOPBACK_NO_PROXY),
                None => super::host::LOOPBACK_NO_PROXY.to_owned(),
            };
            p = p.no_proxy(reqwest::NoProxy::from_string(&no_proxy));
            b = b.proxy(p);
        } else if self.no_proxy.is_some() {
            return Err(Error::config(
                "no_proxy",
                "no_proxy is set but proxy is not",
            ));
        }
        b.build()
            .map_err(|e| Error::config_caused("tls", "cannot create the HTTP client", e))
    }
}

fn parse_certs(bytes: &[u8], setting: &str, what: &str) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(bytes).map_err(|e| {
        Error::config_caused(
            setting,
            format!("{what} is not a valid PEM certificate bundle"),
            e,
        )
    })?;
    if certs.is_empty() {
        return Err(Error::config(
            setting,
            format!("{what} contains no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    // reqwest reads the certificates' DER only when it builds a client: build one with these
    // alone, so a block that is no certificate is refused naming its file, not as a client
    // error naming nothing.
    let mut only = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    for cert in &certs {
        only = only.add_root_certificate(cert.clone());
    }
    only.build().map_err(|e| {
        Error::config_caused(
            setting,
            format!("{what} holds a PEM block that is no certificate"),
            e,
        )
    })?;
    Ok(certs)
}
