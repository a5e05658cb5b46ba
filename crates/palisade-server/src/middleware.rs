//! The edge layer every request passes through, in one function so its order is plain to
//! read: work out who the client is and over which scheme, refuse foreign Host names, run the
//! rest, then put the security headers on whatever came back (including refusals, 404s and
//! the bare statuses produced by the timeout and body-limit layers, which get a plain-words
//! body here).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::app::AppState;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
/// One year; no `includeSubDomains`, since the server cannot know what else runs under its
/// parent domain.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Who sent a request, as far as we can trust it. Inserted as a request extension for
/// handlers (rate limits key on `ip`; CSRF origin checks need `https`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the peer, or behind a trusted proxy the address it reported.
    pub ip: IpAddr,
    /// Whether the client reached us over HTTPS (directly, or via a trusted proxy that
    /// said so with `X-Forwarded-Proto: https`).
    pub https: bool,
}

/// The edge middleware; see the module documentation.
pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let config = state.config();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = client_info(
        peer,
        !config.insecure_http,
        &config.trusted_proxies,
        req.headers(),
    );
    req.extensions_mut().insert(client);

    let mut response = match host_problem(&req, &config.allowed_hosts) {
        Some(host) => {
            // Debug formatting escapes control characters an attacker might send.
            tracing::warn!(host = ?host, "refused a request for a host not in allowed_hosts");
            (
                StatusCode::BAD_REQUEST,
                "400 Bad Request\n\nThis server does not answer to the host name in this \
                 request (the Host header). If you run this server, add the name to \
                 allowed_hosts in palisade.toml.\n",
            )
                .into_response()
        }
        None => next.run(req).await,
    };
    explain_bare_error(&mut response);
    add_security_headers(response.headers_mut(), client.https);
    response
}

/// The Host check: `Some(offending value)` when the request must be refused. HTTP/2 carries
/// the host in the `:authority` pseudo-header (the URI's authority); HTTP/1 in `Host` (or an
/// absolute-form URI). Every one present must be allowed, and at least one must be present.
fn host_problem(req: &Request, allowed: &crate::hosts::AllowedHosts) -> Option<String> {
    let mut seen = false;
    if let Some(authority) = req.uri().authority() {
        seen = true;
        if !allowed.matches(authority.as_str()) {
            return Some(authority.as_str().to_owned());
        }
    }
    for value in req.headers().get_all(header::HOST) {
        seen = true;
        match value.to_str() {
            Ok(v) if allowed.matches(v) => {}
            Ok(v) => return Some(v.to_owned()),
            Err(_) => return Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        }
    }
    if seen { None } else { Some(String::new()) }
}

/// Works out the client address and scheme. Forwarded headers are believed only when the
/// server speaks plain HTTP behind a proxy and the peer is one of the trusted proxies;
/// otherwise any client could claim any address or scheme.
pub fn client_info(
    peer: Option<IpAddr>,
    tls: bool,
    trusted: &[IpNet],
    headers: &HeaderMap,
) -> ClientInfo {
    let peer_ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let direct = ClientInfo {
        ip: peer_ip,
        https: tls,
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if tls || peer.is_none() || !is_trusted(&peer_ip) {
        return direct;
    }
    // X-Forwarded-For is appended to by each proxy: walk from the right, skipping our own
    // proxies; the first untrusted address is the client. Unparseable → keep the peer.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut ip = peer_ip;
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(addr) => {
                ip = addr;
                if !is_trusted(&addr) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    // The last X-Forwarded-Proto value is the one our proxy set.
    let https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    ClientInfo { ip, https }
}

fn add_security_headers(headers: &mut HeaderMap, https: bool) {
    let mut set = |name: HeaderName, value: &'static str| {
        // A route may set a stricter value of its own; keep it.
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if https {
        // Over plain HTTP the header is ignored by browsers and would only mislead.
        set(header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY);
    }
}

/// Error statuses produced by layers (timeout, body limit, method not allowed) have empty
/// bodies; the contract wants 4xx pages to say what was wrong in plain words.
fn explain_bare_error(response: &mut Response) {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
        || response.body().size_hint().exact() != Some(0)
    {
        return;
    }
    let why = match status {
        StatusCode::REQUEST_TIMEOUT => "The request took too long and was stopped.",
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is larger than this server accepts.",
        StatusCode::METHOD_NOT_ALLOWED => "This address does not accept that request method.",
        StatusCode::NOT_FOUND => "There is no page at this address.",
        s if s.is_server_error() => "Something went wrong on the server.",
        _ => "The request could not be handled.",
    };
    let text = format!(
        "{} {}\n\n{why}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    *response.body_mut() = Body::from(text);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_headers_ignored_without_trust() {
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = Some("10.0.0.5".parse().unwrap());
        let c = client_info(peer, false, &[], &h);
        assert_eq!(c.ip.to_string(), "10.0.0.5");
        assert!(!c.https);
        // Over TLS the peer is the client, whatever the headers say.
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let c = client_info(peer, true, &trusted, &h);
        assert_eq!(c.ip.to_string(), "10.0.0.5");
        assert!(c.https);
    }

    #[test]
    fn trusted_proxy_chain() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = client_info(Some("10.0.0.5".parse().unwrap()), false, &trusted, &h);
        assert_eq!(
            c.ip.to_string(),
            "1.2.3.4",
            "spoofed left-most entry ignored"
        );
        assert!(c.https);
        let h = headers(&[("x-forwarded-for", "garbage")]);
        let c = client_info(Some("10.0.0.5".parse().unwrap()), false, &trusted, &h);
        assert_eq!(c.ip.to_string(), "10.0.0.5");
        assert!(!c.https);
    }
}
