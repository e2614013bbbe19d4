use std::os::unix::fs::PermissionsExt as _;

use super::key::{self, KeyError, KeySource};
use super::{SealError, SealKey, is_sealed};
use crate::config::SecretsSection;
use crate::secret::Secret;

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

fn key(text: &str) -> SealKey {
    SealKey::from_base64(text).expect("a valid test key")
}

#[test]
fn a_sealed_value_opens_with_its_key_and_context_only() {
    let a = key(KEY_A);
    let sealed = a.seal(b"hunter2", "monitor/m1/check.password");
    assert!(is_sealed(&sealed), "{sealed}");
    assert!(!sealed.contains("hunter2"));
    assert_eq!(a.open(&sealed, "monitor/m1/check.password").unwrap(), b"hunter2");
    // Moved to another record or field: refused.
    assert_eq!(a.open(&sealed, "monitor/m2/check.password"), Err(SealError::Open));
    assert_eq!(a.open(&sealed, "monitor/m1/check.token"), Err(SealError::Open));
    // Another key: refused, never garbage.
    assert_eq!(key(KEY_B).open(&sealed, "monitor/m1/check.password"), Err(SealError::Open));
}

#[test]
fn each_seal_uses_a_fresh_nonce() {
    let a = key(KEY_A);
    assert_ne!(a.seal(b"same", "c"), a.seal(b"same", "c"));
}

#[test]
fn a_changed_or_malformed_value_is_refused() {
    let a = key(KEY_A);
    let sealed = a.seal(b"hunter2", "c");
    let mut bytes = sealed.clone().into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(bytes).unwrap();
    assert_eq!(a.open(&changed, "c"), Err(SealError::Open));
    assert!(matches!(a.open("hunter2", "c"), Err(SealError::Format(_))));
    assert!(matches!(a.open("sealed:v1:!!", "c"), Err(SealError::Format(_))));
    assert!(matches!(a.open("sealed:v1:AAAA", "c"), Err(SealError::Format(_))));
}

#[test]
fn a_key_must_be_base64_of_32_bytes() {
    assert!(matches!(SealKey::from_base64("c2hvcnQ="), Err(SealError::BadKey(_))));
    assert!(matches!(SealKey::from_base64("not base64!"), Err(SealError::BadKey(_))));
    assert!(SealKey::from_base64(&format!(" {KEY_A}\n")).is_ok());
    assert!(!format!("{:?}", key(KEY_A)).contains(KEY_A));
}

fn section(key: Option<&str>, key_file: Option<&std::path::Path>) -> SecretsSection {
    SecretsSection { key: key.map(Secret::new), key_file: key_file.map(ToOwned::to_owned) }
}

#[test]
fn the_embedded_store_generates_a_private_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let (first, source) = key::load(&section(None, None), dir.path(), true).unwrap();
    let path = dir.path().join(key::GENERATED_KEY_FILE);
    assert_eq!(source, KeySource::Generated(path.clone()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let sealed = first.seal(b"x", "c");
    let (again, _) = key::load(&section(None, None), dir.path(), true).unwrap();
    assert_eq!(again.open(&sealed, "c").unwrap(), b"x", "the same key is read back");
}

#[test]
fn a_shared_store_without_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = key::load(&section(None, None), dir.path(), false).unwrap_err();
    assert!(matches!(error, KeyError::MissingForCluster));
    assert!(error.to_string().contains("same secrets key"), "{error}");
    assert!(!dir.path().join(key::GENERATED_KEY_FILE).exists());
    let (_, source) = key::load(&section(Some(KEY_A), None), dir.path(), false).unwrap();
    assert_eq!(source, KeySource::Config);
}

#[test]
fn a_key_file_readable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, KEY_A).unwrap();
    for mode in [0o644, 0o640, 0o602] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = key::load(&section(None, Some(&path)), dir.path(), false).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, KeyError::Insecure { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
        assert!(text.contains("chmod 600"), "{text}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, source) = key::load(&section(None, Some(&path)), dir.path(), false).unwrap();
    assert_eq!(source, KeySource::File(path.clone()));
    std::fs::write(&path, "c2hvcnQ=").unwrap();
    let error = key::load(&section(None, Some(&path)), dir.path(), false).unwrap_err();
    assert!(error.to_string().contains("secrets.key_file"), "{error}");
}
