//! An independent AWS Signature Version 4 signer (AWS General Reference, "Create a signed AWS
//! API request"), checked against the documentation's example, to verify what the EC2
//! reactions sent.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::test_api::Recorded;

/// The AWS documentation's example secret key.
pub(super) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let date_key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region_key = hmac(&date_key, region.as_bytes());
    let service_key = hmac(&region_key, service.as_bytes());
    hmac(&service_key, b"aws4_request")
}

/// Returns the canonical request of `headers` (every one signed, names any case).
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut headers: Vec<(String, &str)> =
        headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.trim())).collect();
    headers.sort();
    let lines: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    format!("{method}\n{path}\n{query}\n{lines}\n{signed}\n{}", sha256_hex(body))
}

fn signature(secret: &str, amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let mut parts = scope.split('/');
    let (date, region, service) =
        (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    hex(&hmac(&signing_key(secret, date, region, service), string_to_sign.as_bytes()))
}

/// Recomputes the signature of `request` from what arrived and asserts it equals the one in
/// its `authorization` header; returns the signed header names.
pub(super) fn verify_signature(request: &Recorded, secret: &str, scope: &str) -> String {
    let authorization = request.header("authorization").expect("an authorization header");
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256 Credential=AKID/").unwrap();
    let (credential_scope, rest) = rest.split_once(", SignedHeaders=").unwrap();
    let (signed, sent) = rest.split_once(", Signature=").unwrap();
    assert_eq!(credential_scope, scope);
    assert!(sent.len() == 64 && sent.bytes().all(|b| b.is_ascii_hexdigit()), "{sent}");
    let amz_date = request.header("x-amz-date").unwrap();
    assert_eq!(&amz_date[..8], scope.split('/').next().unwrap(), "date of the scope");
    let headers: Vec<(&str, &str)> =
        signed.split(';').map(|name| (name, request.header(name).unwrap())).collect();
    let query = request.query.as_deref().unwrap_or("");
    let canonical =
        canonical_request(&request.method, &request.path, query, &headers, &request.body);
    assert_eq!(sent, signature(secret, amz_date, scope, &canonical), "signature of {canonical}");
    signed.to_owned()
}

#[test]
fn the_reference_signer_reproduces_the_aws_documentation_example() {
    // AWS General Reference, "Signature Version 4 signing process", the IAM ListUsers example.
    let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
    assert_eq!(hex(&key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("Host", "iam.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
    ];
    let query = "Action=ListUsers&Version=2010-05-08";
    let canonical = canonical_request("GET", "/", query, &headers, b"");
    assert_eq!(
        sha256_hex(canonical.as_bytes()),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    assert_eq!(
        signature(SECRET, "20150830T123600Z", "20150830/us-east-1/iam/aws4_request", &canonical),
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
}
