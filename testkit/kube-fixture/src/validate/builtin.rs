//! Built-in kinds, checked by the PyPI tool `kubernetes-validate --strict` against the official
//! schemas of the fixture's Kubernetes version.
//!
//! ## Overview
//! The tool is a Python CLI that takes about a second per call, so verdicts are cached by a hash
//! of (tool version, Kubernetes version, object): in memory, and on disk under the system temp
//! directory so that the one-process-per-test runs of nextest share them. A missing tool is an
//! error when the fixture starts, never a skipped check.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::FixtureError;

/// Environment variable naming the tool, when it is not `kubernetes-validate` on PATH.
pub const TOOL_ENV: &str = "TESSERA_KUBERNETES_VALIDATE";

pub struct BuiltinValidator {
    tool: PathBuf,
    tool_version: String,
    kubernetes_version: String,
    cache_dir: PathBuf,
    memo: Mutex<HashMap<String, Result<(), String>>>,
}

impl BuiltinValidator {
    /// The tool named by [`TOOL_ENV`], else `kubernetes-validate` on PATH.
    pub fn default_tool() -> PathBuf {
        std::env::var_os(TOOL_ENV).map(PathBuf::from).unwrap_or_else(|| "kubernetes-validate".into())
    }

    /// Checks that the tool runs and knows the Kubernetes version.
    pub fn new(tool: PathBuf, kubernetes_version: &str) -> Result<Self, FixtureError> {
        let shown = tool.display().to_string();
        let missing = |reason: String| FixtureError::ValidatorMissing { tool: shown.clone(), reason };
        let out = Command::new(&tool).arg("--version").output().map_err(|e| missing(e.to_string()))?;
        if !out.status.success() {
            return Err(missing(format!("`--version` exited with {}", out.status)));
        }
        let tool_version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let cache_dir = std::env::temp_dir().join("tessera-kube-fixture").join("kubernetes-validate");
        let validator = Self {
            tool,
            tool_version,
            kubernetes_version: kubernetes_version.to_string(),
            cache_dir,
            memo: Mutex::new(HashMap::new()),
        };
        // An unsupported Kubernetes version is a FATAL of the tool: find out now, not per object.
        let probe = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "probe"}});
        validator.validate(&probe).map_err(missing)?;
        Ok(validator)
    }

    /// `Err(message)` when the tool rejects the object (or cannot be run).
    pub fn validate(&self, object: &Value) -> Result<(), String> {
        let body = serde_json::to_vec(object).map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        hasher.update(self.tool_version.as_bytes());
        hasher.update([0]);
        hasher.update(self.kubernetes_version.as_bytes());
        hasher.update([0]);
        hasher.update(&body);
        let key = hex::encode(hasher.finalize());
        if let Some(verdict) = self.memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return verdict;
        }
        let verdict = match self.read_cache(&key) {
            Some(v) => v,
            None => {
                let v = self.run(&body)?;
                self.write_cache(&key, &v);
                v
            }
        };
        if let Ok(mut memo) = self.memo.lock() {
            memo.insert(key, verdict.clone());
        }
        verdict
    }

    /// Runs the tool; the outer `Err` is a tool failure (not cached), the inner a verdict.
    fn run(&self, body: &[u8]) -> Result<Result<(), String>, String> {
        let mut child = Command::new(&self.tool)
            .args(["--strict", "--no-warn", "-k", &self.kubernetes_version, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.tool.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(body).map_err(|e| format!("cannot write to {}: {e}", self.tool.display()))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("{} failed: {e}", self.tool.display()))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            return Ok(Ok(()));
        }
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR")).collect();
        if errors.is_empty() {
            return Err(format!("{} exited with {}: {}", self.tool.display(), out.status, text.trim()));
        }
        Ok(Err(errors.join("\n")))
    }

    fn read_cache(&self, key: &str) -> Option<Result<(), String>> {
        let text = std::fs::read_to_string(self.cache_dir.join(key)).ok()?;
        match text.split_once('\n') {
            Some(("ok", _)) => Some(Ok(())),
            Some(("rejected", message)) => Some(Err(message.to_string())),
            _ => None,
        }
    }

    /// Best effort: a cache that cannot be written only costs time.
    fn write_cache(&self, key: &str, verdict: &Result<(), String>) {
        let text = match verdict {
            Ok(()) => "ok\n".to_string(),
            Err(message) => format!("rejected\n{message}"),
        };
        if std::fs::create_dir_all(&self.cache_dir).is_err() {
            return;
        }
        let tmp = self.cache_dir.join(format!("{key}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, self.cache_dir.join(key));
        }
    }
}
