//! The fields of a POST body: `application/x-www-form-urlencoded` (what
//! mail providers and browsers send) or `multipart/form-data` (RFC 8058
//! allows it). Bodies are bounded before they get here; nothing in this
//! file allocates more than the body's size or panics on any input.

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FormError {
    /// A content type that is neither of the two.
    Unsupported,
    /// A multipart body without a boundary, or cut short.
    Malformed,
}

/// The body's fields, in order; a missing content type is read as
/// urlencoded (some clients leave it out of a one-click POST).
pub(super) fn fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, FormError> {
    let content_type = content_type.unwrap_or("application/x-www-form-urlencoded");
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Ok(url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()),
        "multipart/form-data" => {
            let boundary = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .filter(|b| !b.is_empty() && b.len() <= 70)
                .ok_or(FormError::Malformed)?;
            multipart(body, &boundary)
        }
        _ => Err(FormError::Unsupported),
    }
}

/// The text fields of a multipart/form-data body (RFC 7578).
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, FormError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut fields = Vec::new();
    let start = find(body, delimiter).ok_or(FormError::Malformed)?;
    let mut rest = &body[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields); // the closing delimiter
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(FormError::Malformed)?;
        let end = find(rest, delimiter).ok_or(FormError::Malformed)?;
        let part = &rest[..end];
        // The CRLF before the delimiter belongs to it.
        let part = part.strip_suffix(b"\r\n").ok_or(FormError::Malformed)?;
        let split = find(part, b"\r\n\r\n").ok_or(FormError::Malformed)?;
        let (head, value) = (&part[..split], &part[split + 4..]);
        let head = std::str::from_utf8(head).map_err(|_| FormError::Malformed)?;
        if let Some(name) = head.split("\r\n").find_map(disposition_name) {
            let value = String::from_utf8_lossy(value).into_owned();
            fields.push((name, value));
        }
        rest = &rest[end + delimiter.len()..];
    }
}

/// The `name` of a `Content-Disposition: form-data; name="..."` line.
fn disposition_name(line: &str) -> Option<String> {
    let (header, value) = line.split_once(':')?;
    if !header.trim().eq_ignore_ascii_case("content-disposition") {
        return None;
    }
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("name")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn a_one_click_body_reads_either_way() {
        assert_eq!(
            fields(
                Some("application/x-www-form-urlencoded"),
                b"List-Unsubscribe=One-Click"
            ),
            Ok(pairs(&[("List-Unsubscribe", "One-Click")]))
        );
        assert_eq!(
            fields(None, b"List-Unsubscribe=One-Click&token=a%20b"),
            Ok(pairs(&[
                ("List-Unsubscribe", "One-Click"),
                ("token", "a b")
            ]))
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ\r\ncontent-disposition: form-data; name=token\r\nContent-Type: text/plain\r\n\r\nabc\r\n--XyZ--\r\n";
        assert_eq!(
            fields(Some("multipart/form-data; boundary=\"XyZ\""), body),
            Ok(pairs(&[
                ("List-Unsubscribe", "One-Click"),
                ("token", "abc")
            ]))
        );
    }

    #[test]
    fn broken_bodies_are_errors_not_panics() {
        let mp = Some("multipart/form-data; boundary=b");
        for body in [
            &b""[..],
            b"--b",
            b"--b\r\n",
            b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\nv",
            b"--b\r\nno blank line\r\n--b--",
            b"--bXX",
        ] {
            assert!(fields(mp, body).is_err(), "{body:?}");
        }
        assert_eq!(
            fields(Some("multipart/form-data"), b"--b--"),
            Err(FormError::Malformed)
        );
        assert_eq!(
            fields(Some("application/json"), b"{}"),
            Err(FormError::Unsupported)
        );
        assert_eq!(fields(mp, b"--b--"), Ok(vec![]));
    }

    #[test]
    fn random_bodies_never_panic() {
        // xorshift: the same bytes every run.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pieces: [&[u8]; 8] = [
            b"--b",
            b"\r\n",
            b"\r\n\r\n",
            b"Content-Disposition: form-data; name=",
            b"\"",
            b"--",
            b"%",
            b"\xff",
        ];
        for _ in 0..20_000 {
            let mut body = Vec::new();
            for _ in 0..next() % 12 {
                let n = next();
                if n % 3 == 0 {
                    body.push((n >> 8) as u8);
                } else {
                    body.extend_from_slice(pieces[(n >> 8) as usize % pieces.len()]);
                }
            }
            let _ = fields(Some("multipart/form-data; boundary=b"), &body);
            let _ = fields(None, &body);
        }
    }
}
