//! The `format`s of `values.schema.json`: rules a pattern cannot state (lengths per label,
//! port ranges, network prefixes, requirement grammar). The Kubernetes rules among them are
//! [`crate::manifest::validate`]'s, the same functions that check the rendered objects, so a
//! value and the field it becomes are held to one rule.

use crate::manifest::{pods, validate};

/// A format's check of a string.
pub type Check = fn(&str) -> bool;

/// Every format, by the name the schema uses.
pub const FORMATS: &[(&str, Check)] = &[
    ("k8s-label-key", |s| {
        validate::label_key_problem(s).is_none()
    }),
    ("k8s-label-value", validate::label_value_ok),
    ("k8s-dns-label", |s| {
        s.is_empty() || validate::is_dns1123_label(s)
    }),
    ("k8s-dns-subdomain", |s| {
        s.is_empty() || validate::is_dns1123_subdomain(s)
    }),
    ("k8s-config-key", |s| s.is_empty() || pods::is_config_key(s)),
    ("host", |s| s.is_empty() || is_host(s)),
    ("host-port", |s| s.is_empty() || is_host_port(s)),
    ("endpoint-url", |s| s.is_empty() || is_endpoint_url(s)),
    ("index-url", |s| s.is_empty() || is_index_url(s)),
    ("cidr", is_cidr),
    ("pip-requirement", is_requirement),
    ("s3-bucket", |s| s.is_empty() || is_s3_bucket(s)),
    ("url-path", |s| !s.split('/').any(|p| p == "." || p == "..")),
    ("plugin-unique-identifier", is_plugin_unique_identifier),
];

/// A DNS name of labels of 1-63 characters, at most 253 in all, or an IPv4 or IPv6 address.
pub fn is_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A port: 1-65535, digits only.
fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
}

/// `host`, `host:port` or `[ipv6]:port`.
pub fn is_host_port(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        return addr.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(is_port));
    }
    match s.split_once(':') {
        Some((host, port)) => is_host(host) && is_port(port),
        None => is_host(s),
    }
}

/// `scheme://host[:port][/]`, without user information.
pub fn is_endpoint_url(s: &str) -> bool {
    let Some((_, rest)) = s.split_once("://") else {
        return false;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    !authority.contains(['@', '/']) && is_host_port(authority)
}

/// `http(s)://host[:port][/path]`: a package index or marketplace. No user information (a
/// credential belongs in a Secret), query, fragment, whitespace or quote: the URL goes into
/// squid's allow-list and the daemon's whitespace-split arguments as it is.
pub fn is_index_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    !authority.contains('@')
        && is_host_port(authority)
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~' | b'%' | b'+')
        })
        && !path.split('/').any(|p| p == "..")
}

/// An IPv4 or IPv6 address, or a network `address/prefix` with a prefix of at most 32 or
/// 128 bits: what squid's `acl … dst` accepts.
pub fn is_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let max = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= max)
    })
}

/// Whether a network is every address (`0.0.0.0/0`, `::/0`): allowed, but it opens every
/// private destination, which is said.
pub fn is_everything(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    prefix.parse::<u32>() == Ok(0) && addr.parse::<std::net::IpAddr>().is_ok()
}

/// One requirement of PEP 508 without markers or URLs: `name[extra,…] (op version)(, op
/// version)*`. Nothing else may be on the line: no pip option (`--pre`, `-e`, `-r`).
pub fn is_requirement(s: &str) -> bool {
    let s = s.trim();
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(s.len());
    let name = &s[..name_end];
    let name_ok = !name.is_empty()
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if !name_ok {
        return false;
    }
    let mut rest = s[name_end..].trim_start();
    if let Some(after) = rest.strip_prefix('[') {
        let Some((extras, tail)) = after.split_once(']') else {
            return false;
        };
        let extras_ok = extras.split(',').map(str::trim).all(|e| {
            !e.is_empty()
                && e.as_bytes()[0].is_ascii_alphanumeric()
                && e.as_bytes()[e.len() - 1].is_ascii_alphanumeric()
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        if !extras_ok {
            return false;
        }
        rest = tail.trim_start();
    }
    if rest.is_empty() {
        return true;
    }
    rest.split(',').all(|spec| {
        let spec = spec.trim();
        let op_len = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"]
            .iter()
            .find(|op| spec.starts_with(*op))
            .map_or(0, |op| op.len());
        let version = spec[op_len..].trim();
        op_len > 0
            && !version.is_empty()
            && version.as_bytes()[0].is_ascii_alphanumeric()
            && version.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'*' | b'+' | b'!' | b'_' | b'-')
            })
    })
}

/// An S3 bucket name by Amazon's rules: 3-63 lowercase letters, digits, '.' and '-', starting
/// and ending with a letter or digit, no "..", not an IPv4 address, none of the reserved
/// prefixes and suffixes.
pub fn is_s3_bucket(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
        && !s.contains("..")
        && !s.contains(".-")
        && !s.contains("-.")
        && s.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|p| s.starts_with(p))
        && !["-s3alias", "--ol-s3", "--x-s3", ".mrap", "--table-s3"]
            .iter()
            .any(|p| s.ends_with(p))
}

/// A Dify plugin's unique identifier, `author/name:version@sha256` (64 lowercase hex digits):
/// what the marketplace's download endpoint takes. A bare plugin id (`author/name`) is not one:
/// the marketplace answers it with no package, and the install fails.
pub fn is_plugin_unique_identifier(s: &str) -> bool {
    let id_part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
    };
    let Some((plugin_version, checksum)) = s.rsplit_once('@') else {
        return false;
    };
    let Some(((author, name), version)) = plugin_version
        .split_once(':')
        .and_then(|(id, v)| Some((id.split_once('/')?, v)))
    else {
        return false;
    };
    id_part(author)
        && id_part(name)
        && !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
        && checksum.len() == 64
        && checksum
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        for ok in [
            "dify.example.com",
            "dify.example.com:8443",
            "192.0.2.1:80",
            "[::1]:443",
            "[2001:db8::1]",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "dify.example.com:0",
            "dify.example.com:65536",
            "a:99999",
            "x..y",
            "-a.b",
            "[::1]:",
            "a:b:c",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
        assert!(!is_host(&"a".repeat(64)));
        assert!(!is_host(&format!("{}.com", "a.".repeat(130))));
        assert!(is_endpoint_url("https://objects.example.com:9000/"));
        assert!(!is_endpoint_url("https://objects.example.com:0"));
        assert!(!is_endpoint_url("https://user:pw@x.example.com"));
        assert!(!is_endpoint_url("grpc://h:70000"));
    }

    #[test]
    fn index_urls() {
        for ok in [
            "https://nexus.example.com/repository/pypi/simple",
            "http://10.0.0.5:8080/simple/",
            "https://marketplace.dify.ai",
            "https://[fd00::1]:8443/simple",
        ] {
            assert!(is_index_url(ok), "{ok}");
        }
        for bad in [
            "ftp://x/simple",
            "https://user:pw@nexus/simple",
            "https://nexus/simple?x=1",
            "https://nexus/a b",
            "https://nexus/../x",
            "https://:80/",
            "nexus/simple",
        ] {
            assert!(!is_index_url(bad), "{bad}");
        }
    }

    #[test]
    fn networks() {
        for ok in ["10.0.0.0/8", "192.0.2.1", "fd00::/8", "::1", "0.0.0.0/0"] {
            assert!(is_cidr(ok), "{ok}");
        }
        for bad in [
            "10.0.0.0/33",
            "999.1.1.1",
            ":::",
            "fd00::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "",
        ] {
            assert!(!is_cidr(bad), "{bad}");
        }
        assert!(is_everything("0.0.0.0/0") && is_everything("::/0"));
        assert!(!is_everything("10.0.0.0/8"));
    }

    #[test]
    fn requirements() {
        for ok in [
            "numpy",
            "numpy==1.26.4",
            "requests[socks] >=2.0, <3",
            "a.b_c-d~=1.0",
            "x===1.0+local",
        ] {
            assert!(is_requirement(ok), "{ok}");
        }
        for bad in [
            "numpy --pre",
            "-e .",
            "--index-url x",
            "numpy ==",
            "numpy 1.0",
            "[x]",
            "numpy[",
            "a ; b",
        ] {
            assert!(!is_requirement(bad), "{bad}");
        }
    }

    #[test]
    fn buckets() {
        assert!(is_s3_bucket("dify-files.v1"));
        for bad in [
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "ab",
            "Upper",
            "a-",
            "x-s3alias",
            "a.-b",
        ] {
            assert!(!is_s3_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn plugin_unique_identifiers() {
        let sum = "5faf411e694e0da130a337347a625a3812b1b7502a0183382d66d92c841bf05a";
        for ok in [
            format!("langgenius/gemini:0.7.4@{sum}"),
            format!("langgenius/openai_api_compatible:0.0.63-offline@{sum}"),
        ] {
            assert!(is_plugin_unique_identifier(&ok), "{ok}");
        }
        for bad in [
            "langgenius/gemini".to_owned(),
            "langgenius/gemini:0.7.4".to_owned(),
            format!("langgenius/gemini@{sum}"),
            format!("langgenius/gemini:@{sum}"),
            format!("gemini:0.7.4@{sum}"),
            format!("langgenius/gemini:0.7.4@{}", &sum[1..]),
            format!("langgenius/gemini:0.7.4@{}", sum.to_uppercase()),
            format!("LangGenius/gemini:0.7.4@{sum}"),
            format!("langgenius/gemini:0 7@{sum}"),
        ] {
            assert!(!is_plugin_unique_identifier(&bad), "{bad}");
        }
    }
}
