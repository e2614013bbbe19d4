//! `cluster.max_frame_bytes`: default, file, environment and range.

use super::{DEFAULT_MAX_FRAME_BYTES, MAX_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES};
use crate::config::{FlagOverrides, NodeConfig};
use crate::error::ConfigError;

const REDIS: &str = "[store]\nurl = \"redis://127.0.0.1:6379/0\"\n";

fn load(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    let env: Vec<(String, String)> =
        env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    NodeConfig::load(Some(&path), &env, &FlagOverrides::default())
}

#[test]
fn max_frame_bytes_defaults_to_4_mib_and_loads_from_file_and_environment() {
    assert_eq!(DEFAULT_MAX_FRAME_BYTES, 4 * 1024 * 1024);
    assert_eq!(load(REDIS, &[]).unwrap().cluster.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
    let text = format!("{REDIS}[cluster]\nmax_frame_bytes = 65536\n");
    assert_eq!(load(&text, &[]).unwrap().cluster.max_frame_bytes, 65_536);
    let env = [("CLOUDROUTES_CLUSTER_MAX_FRAME_BYTES", "1048576")];
    assert_eq!(load(&text, &env).unwrap().cluster.max_frame_bytes, 1_048_576);
    let top = format!("{REDIS}[cluster]\nmax_frame_bytes = {MAX_MAX_FRAME_BYTES}\n");
    assert_eq!(load(&top, &[]).unwrap().cluster.max_frame_bytes, MAX_MAX_FRAME_BYTES);
}

#[test]
fn max_frame_bytes_out_of_range_is_refused_naming_the_key() {
    for value in [0, 1024, MIN_MAX_FRAME_BYTES - 1, MAX_MAX_FRAME_BYTES + 1] {
        let text = format!("{REDIS}[cluster]\nmax_frame_bytes = {value}\n");
        match load(&text, &[]) {
            Err(ConfigError::Invalid { key, message }) => {
                assert_eq!(key, "cluster.max_frame_bytes", "{message}");
                assert!(message.contains(&value.to_string()), "{message}");
                assert!(message.contains("65536"), "{message}");
            }
            other => panic!("max_frame_bytes = {value} was not refused: {other:?}"),
        }
    }
    let env = [("CLOUDROUTES_CLUSTER_MAX_FRAME_BYTES", "abc")];
    let err = load(REDIS, &env).unwrap_err().to_string();
    assert!(err.contains("CLOUDROUTES_CLUSTER_MAX_FRAME_BYTES"), "{err}");
}
