//! TLS: a generated CA + server certificate (rcgen), or certificate files; rustls with `ring`.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::base::error::EmulatorError;

/// A ready TLS server configuration and, when generated, the CA certificate in PEM.
pub(crate) struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: Option<String>,
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, EmulatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmulatorError::tls("").with_source(e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| EmulatorError::tls("").with_source(e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Generates a CA and a server certificate for 127.0.0.1, ::1 and localhost (plus `extra_hosts`).
pub(crate) fn generate(extra_hosts: &[String]) -> Result<TlsSetup, EmulatorError> {
    let err = |e: rcgen::Error| EmulatorError::tls("").with_source(e);
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "snowpipe-emulator local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;

    let mut names = vec!["localhost".to_string()];
    names.extend(extra_hosts.iter().cloned());
    let mut params = CertificateParams::new(names).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "snowpipe-emulator");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;

    let chain = vec![cert.der().clone(), ca_cert.der().clone()];
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok(TlsSetup {
        config: server_config(chain, key_der)?,
        ca_pem: Some(ca_cert.pem()),
    })
}

/// Loads a certificate chain and key from PEM files.
pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<TlsSetup, EmulatorError> {
    let read = |path: &Path, what: &str| {
        crate::base::option_file::read(path, what, crate::base::option_file::MAX_SMALL_FILE_BYTES)
            .map_err(|e| {
                EmulatorError::tls(format!("cannot read the {what} file {}", path.display()))
                    .with_source(e)
            })
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert, "certificate")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            EmulatorError::tls(format!("cannot read certificates from {}", cert.display()))
                .with_source(e)
        })?;
    let key = PrivateKeyDer::from_pem_slice(&read(key, "private key")?).map_err(|e| {
        EmulatorError::tls(format!(
            "cannot read the private key from {}",
            key.display()
        ))
        .with_source(e)
    })?;
    Ok(TlsSetup {
        config: server_config(chain, key)?,
        ca_pem: None,
    })
}
