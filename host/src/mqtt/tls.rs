//! TLS for the server's own broker connections and for the reachability probe.
//!
//! `WFM_MQTT_URL` with the scheme `mqtts` or `ssl` selects TLS (spec 03 §9.2); the ingress
//! client and the Mosquitto dynamic-security client both use it. Upstream connects without
//! verifying the broker's certificate. WFM verifies by default: against the CA of
//! `WFM_MQTT_CA_FILE` when that file is readable (only that CA is trusted), else against the
//! system roots, always with the host name of the URL. `WFM_MQTT_TLS_VERIFY=false` restores the
//! upstream behaviour for deployments that reach the broker under a name its certificate does
//! not carry (see `docs/mqtt-brokers.md`).
//!
//! The TLS stack is native-tls (OpenSSL on Linux): rumqttc's rustls feature pins a
//! rustls-webpki with open advisories (tech notes §5). TLS 1.2 is the floor everywhere.

use std::time::Duration;

use native_tls::{Certificate, Protocol, TlsConnector};
use rumqttc::{TlsConfiguration, Transport};

use crate::config::Settings;

/// True when `url` asks for TLS (`mqtts://` or `ssl://`).
pub fn is_tls_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "mqtts" | "ssl"))
}

/// The connector for the server's own broker connections, per the policy above; `ca_pem` is
/// the content of `WFM_MQTT_CA_FILE` when it could be read.
fn server_connector(settings: &Settings, ca_pem: Option<&[u8]>) -> Result<TlsConnector, String> {
    let mut b = TlsConnector::builder();
    b.min_protocol_version(Some(Protocol::Tlsv12));
    if !settings.mqtt_tls_verify {
        b.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
    } else if let Some(pem) = ca_pem {
        let ca = Certificate::from_pem(pem).map_err(|e| format!("{}: not a PEM certificate: {e}", settings.mqtt_ca_file.display()))?;
        b.disable_built_in_roots(true).add_root_certificate(ca);
    }
    b.build().map_err(|e| format!("TLS set-up failed: {e}"))
}

/// The rumqttc transport for `WFM_MQTT_URL`: plain TCP, or TLS per [`server_connector`] (the
/// CA file is read without blocking the runtime).
pub async fn server_transport(settings: &Settings) -> Result<Transport, String> {
    if !is_tls_url(&settings.mqtt_url) {
        return Ok(Transport::Tcp);
    }
    let ca = if settings.mqtt_tls_verify { tokio::fs::read(&settings.mqtt_ca_file).await.ok() } else { None };
    Ok(Transport::Tls(TlsConfiguration::NativeConnector(server_connector(settings, ca.as_deref())?)))
}

/// What the unverified probe of `/settings/mqtt/test` saw.
#[derive(Debug)]
pub enum ProbeError {
    /// The whole probe ran past its deadline.
    Timeout,
    /// Connect or handshake failed; the error text.
    Failed(String),
}

/// TCP connect, then (with `tls`) a TLS handshake that does not verify the certificate, with
/// SNI = `host` (spec 03 §10.3). Both steps share the deadline.
pub async fn probe(host: &str, port: u16, tls: bool, deadline: Duration) -> Result<(), ProbeError> {
    let work = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| ProbeError::Failed(e.to_string()))?;
        if !tls {
            return Ok(());
        }
        let connector = TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .min_protocol_version(Some(Protocol::Tlsv12))
            .build()
            .map_err(|e| ProbeError::Failed(e.to_string()))?;
        let connector = tokio_native_tls::TlsConnector::from(connector);
        connector.connect(host, tcp).await.map(|_| ()).map_err(|e| ProbeError::Failed(format!("TLS handshake failed: {e}")))
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_schemes() {
        assert!(is_tls_url("mqtts://broker:8883"));
        assert!(is_tls_url("ssl://broker"));
        assert!(!is_tls_url("mqtt://broker:1883"));
        assert!(!is_tls_url("tcp://broker"));
        assert!(!is_tls_url("not a url"));
    }
}
