//! The Host allow-list (Django's `ALLOWED_HOSTS`). A request whose Host is not ours is
//! refused before any route runs: it defends against DNS rebinding and against absolute
//! URLs (password-reset links, redirects) being built from an attacker's Host header.

use std::net::{IpAddr, Ipv6Addr};

/// Host names the server answers to, normalised (lower case, no trailing dot, IPv6 literals
/// in brackets). An entry starting with `.` matches that domain and every subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// The defaults: the listen address, `localhost`, `127.0.0.1` and `[::1]`.
    pub fn defaults_for(listen: IpAddr) -> Self {
        let mut hosts = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ];
        let own = ip_host(listen);
        if !listen.is_unspecified() && !hosts.contains(&own) {
            hosts.push(own);
        }
        Self(hosts)
    }

    /// Parses configured entries; the error is the reason, for the caller to place.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for item in items {
            let item = item.trim();
            if item == "*" {
                return Err(
                    "\"*\" would switch the Host check off; list the host names instead".to_owned(),
                );
            }
            let normal = if let Ok(addr) = item.parse::<Ipv6Addr>() {
                // `::1` in a configuration file plainly means the bracketed literal.
                format!("[{addr}]")
            } else {
                let (name, _) = split_host_port(item)
                    .ok_or_else(|| format!("{item:?} is not a host name or IP address"))?;
                if name.is_empty() || name == "." {
                    return Err(format!("{item:?} is not a host name or IP address"));
                }
                name
            };
            hosts.push(normal);
        }
        if hosts.is_empty() {
            return Err("the list is empty: the server would refuse every request".to_owned());
        }
        Ok(Self(hosts))
    }

    /// The configured entries, normalised.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// Whether `header` (a Host header value or URI authority; any port is ignored) names
    /// one of the allowed hosts.
    pub fn matches(&self, header: &str) -> bool {
        let Some((host, _)) = split_host_port(header) else {
            return false;
        };
        self.0.iter().any(|allowed| {
            if let Some(domain) = allowed.strip_prefix('.') {
                host == domain
                    || host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.ends_with('.'))
            } else {
                *allowed == host
            }
        })
    }
}

/// `127.0.0.1` or `[::1]`: how an address appears in a Host header.
pub(crate) fn ip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Splits `host[:port]` into the normalised host and the port text. Returns `None` for text
/// that cannot be a Host value (bad brackets, stray characters, a non-numeric port).
fn split_host_port(value: &str) -> Option<(String, Option<&str>)> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        // Canonical form, so `[0:0:0:0:0:0:0:1]` and `[::1]` are the same host.
        let addr = inside.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        // Host names are letters, digits, '-', '.', '_' (and a leading '.' in the
        // configuration's domain form); anything else is not a host we could serve.
        let valid = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return None;
        }
        let host = host.to_ascii_lowercase();
        // "example.com." is the same name as "example.com".
        let host = match host.strip_suffix('.') {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => host,
        };
        (host, port)
    };
    if let Some(p) = port
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 5)
    {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn defaults() -> AllowedHosts {
        AllowedHosts::defaults_for("127.0.0.1".parse().unwrap())
    }

    #[test]
    fn defaults_match_loopback_names_any_port() {
        let h = defaults();
        for ok in [
            "localhost",
            "LOCALHOST:8443",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8443",
            "[0:0:0:0:0:0:0:1]:8443",
        ] {
            assert!(h.matches(ok), "{ok} should match");
        }
    }

    #[test]
    fn foreign_and_malformed_hosts_refused() {
        let h = defaults();
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "evil-localhost",
            "127.0.0.2",
            "[::2]",
            "::1",
            "[::1",
            "[::1]x",
            "localhost:",
            "localhost:80:80",
            "localhost:http",
            "local host",
            "user@localhost",
            "",
            "[evil.example]",
        ] {
            assert!(!h.matches(bad), "{bad:?} should not match");
        }
    }

    #[test]
    fn listen_address_is_included() {
        let h = AllowedHosts::defaults_for("192.0.2.7".parse().unwrap());
        assert!(h.matches("192.0.2.7:8443"));
        let h = AllowedHosts::defaults_for("2001:db8::7".parse().unwrap());
        assert!(h.matches("[2001:db8::7]:8443"));
        let h = AllowedHosts::defaults_for("0.0.0.0".parse().unwrap());
        assert!(
            !h.matches("0.0.0.0"),
            "the wildcard address is not a host name"
        );
    }

    #[test]
    fn configured_entries_and_domains() {
        let h = AllowedHosts::parse(["Example.COM", ".example.org", "::1", "10.0.0.1"]).unwrap();
        assert!(h.matches("example.com:443"));
        assert!(!h.matches("www.example.com"));
        assert!(h.matches("example.org"));
        assert!(h.matches("a.b.example.org"));
        assert!(!h.matches("badexample.org"));
        assert!(h.matches("[::1]"));
        assert!(h.matches("10.0.0.1"));
        assert!(AllowedHosts::parse(["*"]).is_err());
        assert!(AllowedHosts::parse(Vec::<&str>::new()).is_err());
        assert!(AllowedHosts::parse(["bad host"]).is_err());
    }
}
