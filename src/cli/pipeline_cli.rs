//! `keygen`, `approve`, `pipeline apply`, `creds`, `audit`: the pipeline-only executor's CLI.

use std::path::Path;
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use secrecy::ExposeSecret;

use super::{AuditCommand, CredsCommand};
use super::{Global, RunArgs, base_registry, policy, run_context, summarize};
use crate::engine::Engine;
use crate::pipeline::creds::{self, PipelineIdentity};
use crate::pipeline::{self, keys};
use crate::plan::{Approval, PlanFile};
use crate::spec;
use crate::state::audit::{self, AuditRecord};
use crate::state::{self, StateStore};

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes()).into_diagnostic()?;
    Ok(())
}

pub fn keygen(out: &Path) -> Result<u8> {
    let (seed, public) = keys::generate()?;
    write_private(out, &seed)?;
    let pub_path = out.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n")).into_diagnostic()?;
    println!(
        "Private key: {} (keep it; mode 0600)\nPublic key:  {public}\nAdd it to policy.yaml under `approvers`.",
        out.display()
    );
    Ok(0)
}

pub fn approve(plan_path: &Path, key_path: &Path, name: Option<String>) -> Result<u8> {
    let mut file = PlanFile::load(plan_path)?;
    let key = keys::load_signing(key_path)?;
    let public = keys::public_hex(&key);
    let approver =
        name.unwrap_or_else(|| key_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    file.approvals.retain(|a| a.key != public);
    file.approvals.push(Approval {
        approver: approver.clone(),
        key: public,
        signature: keys::sign(&key, &file.digest),
    });
    file.save(plan_path)?;
    println!("{approver} approved plan {} ({} approval(s) now).", &file.digest[..16], file.approvals.len());
    Ok(0)
}

pub async fn pipeline_apply(
    g: &Global,
    plan_path: &Path,
    identity_file: Option<&Path>,
    sealed: Option<&Path>,
    run: &RunArgs,
) -> Result<u8> {
    // Every check runs before anything touches a cloud or the state's resources.
    let identity = PipelineIdentity::from_env_or_file(identity_file)?;
    let file = PlanFile::load(plan_path)?;
    let policy = policy(g)?.ok_or_else(|| {
        miette!(
            help = "the pipeline needs the repository's policy.yaml (or --policy PATH)",
            "no policy at {}",
            g.policy.display()
        )
    })?;
    let spec_path = Path::new(&file.plan.spec_path);
    let fleet = spec::load(spec_path).wrap_err("the plan's spec is refused")?;
    let approvers = pipeline::check(&policy, &file)?;

    let mut registry = base_registry(g)?;
    if let Some(path) = sealed {
        let bytes = std::fs::read(path).into_diagnostic().wrap_err_with(|| format!("reading {}", path.display()))?;
        // Each backend takes its own section when it builds its client; nothing else sees them.
        let creds = creds::unseal(&bytes, &identity, registry.backends())?;
        registry = registry.with_credentials(creds.sections);
    }
    let store: Arc<dyn StateStore> = Arc::from(state::open(&g.state).await?);
    let mut engine = Engine::new(Arc::new(registry), store);
    engine.lock_ttl = g.lock_ttl;
    if let Some(t) = run.lock_timeout {
        engine.lock_timeout = t;
    }
    let (events, cancel_rx, opts) = run_context(g, run);
    let report = engine.apply_pipeline(&file.plan, &fleet, &file.digest, &approvers, &opts, events, cancel_rx).await?;
    summarize(g, &report);
    if report.is_success() {
        Ok(0)
    } else {
        Err(miette!(
            "pipeline apply incomplete: {} failed, {} skipped, {} not started",
            report.failed(),
            report.skipped(),
            report.not_started()
        ))
    }
}

pub fn creds(command: CredsCommand) -> Result<u8> {
    match command {
        CredsCommand::Identity { out } => {
            let (secret, recipient) = PipelineIdentity::generate();
            write_private(&out, &format!("{}\n", secret.expose_secret()))?;
            println!(
                "Identity written to {} (store it as the pipeline's secret, then delete it).\nRecipient: {recipient}",
                out.display()
            );
        }
        CredsCommand::Seal { recipient, input, out } => {
            let plain = zeroize::Zeroizing::new(
                std::fs::read(&input).into_diagnostic().wrap_err_with(|| format!("reading {}", input.display()))?,
            );
            let sealed = creds::seal(&plain, &recipient, &crate::backends::all())?;
            std::fs::write(&out, sealed).into_diagnostic()?;
            println!("Sealed to {recipient} in {}. Delete {} now.", out.display(), input.display());
        }
    }
    Ok(0)
}

pub async fn audit(g: &Global, command: AuditCommand) -> Result<u8> {
    let store = state::open(&g.state).await?;
    let (rows, head) = store.audit_log().await?;
    match command {
        AuditCommand::Verify => {
            let n = audit::verify(&rows, head.as_deref())?;
            println!("Audit chain intact: {n} record(s).");
        }
        AuditCommand::Log => {
            for row in &rows {
                let record: AuditRecord = serde_json::from_str(&row.record).into_diagnostic()?;
                println!(
                    "#{} {} plan {} by {}",
                    row.seq,
                    record.fleet,
                    &record.plan_digest[..16.min(record.plan_digest.len())],
                    record.approvers.join(", ")
                );
                for o in &record.outcomes {
                    println!("    {o}");
                }
            }
        }
    }
    Ok(0)
}
