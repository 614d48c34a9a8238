//! `keygen`, `approve`, `pipeline apply`, `creds`, `audit`, `policy`: the pipeline-only
//! executor's CLI.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use secrecy::ExposeSecret;

use super::{AuditCommand, CredsCommand, PolicyCommand};
use super::{Global, RunArgs, base_registry, enforced_policy, finished, run_context, summarize};
use crate::engine::Engine;
use crate::pipeline::bound::{self, Enforced};
use crate::pipeline::change::{self, PolicyChange};
use crate::pipeline::creds::{self, PipelineIdentity};
use crate::pipeline::{self, Authority, Policy, keys, plan_spec};
use crate::plan::{Approval, PlanFile};
use crate::providers::Registry;
use crate::state::audit::{self, Anchors, AuditSigner, Body, Handoff, PolicyChangeRecord, SignedEntry};
use crate::state::{self, BoundPolicy, SignedAuditStore, StateStore};

/// Writes a key file with `mode` (0600 for secrets); an existing file only with `force`.
fn write_key(path: &Path, text: &str, mode: u32, force: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut f = options.open(path).into_diagnostic().wrap_err_with(|| format!("creating {}", path.display()))?;
    // `mode` applies to a new file only: an overwritten one gets it too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode)).into_diagnostic()?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    f.write_all(text.as_bytes()).into_diagnostic()?;
    Ok(())
}

pub fn keygen(out: &Path, force: bool) -> Result<u8> {
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("pub")) {
        return Err(miette!(
            help = "name the private key (`--out alice.key`); its public key is written beside it as `alice.pub`",
            "refusing --out {}: a name ending in `.pub` is where the public key goes",
            out.display()
        ));
    }
    let pub_path = out.with_extension("pub");
    if !force {
        for path in [out, pub_path.as_path()] {
            if path.exists() {
                return Err(miette!(
                    help = "choose another --out, or pass --force to replace both key files",
                    "refusing to overwrite {}: key files are never overwritten without --force",
                    path.display()
                ));
            }
        }
    }
    let (secret, public) = keys::generate()?;
    write_key(out, &secret, 0o600, force)?;
    write_key(&pub_path, &format!("{public}\n"), 0o644, force)?;
    println!(
        "Private key: {} (keep it; mode 0600)\nPublic key:  {public} (in {})\nAdd it to policy.yaml under `approvers`.",
        out.display(),
        pub_path.display()
    );
    Ok(0)
}

/// Signs a plan or a policy change, after showing what is signed. The key must be a private key;
/// a key the policy file does not list is warned about, since its signature will not count.
pub async fn approve(g: &Global, doc_path: &Path, key_path: &Path, name: Option<String>, yes: bool) -> Result<u8> {
    let key = keys::load_signing(key_path)?;
    let public = keys::public_hex(&key);
    let policy = match bound::read_file(&g.policy)? {
        Some(text) => Some(Policy::parse(&g.policy, &text)?),
        None => None,
    };
    let listed = policy.as_ref().and_then(|p| p.approver_by_key(&public)).map(|a| a.name.clone());
    match (&policy, &listed) {
        (None, _) => {
            eprintln!("warning: no policy at {}: cannot tell whether this key is an approver's", g.policy.display())
        }
        (Some(_), None) => eprintln!(
            "warning: key {public} is not an approver in {}: this signature will not count",
            g.policy.display()
        ),
        (Some(_), Some(_)) => {}
    }
    let approver = name
        .or(listed)
        .unwrap_or_else(|| key_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let text = crate::bounded::read_to_string(doc_path, crate::bounded::PLAN)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", doc_path.display()))?;
    print!("{}", super::show::summary(g, doc_path, &text).await?);
    confirm_signing(&approver, yes)?;
    let sign = |approvals: &mut Vec<Approval>, digest: &str| {
        approvals.retain(|a| a.key != public);
        approvals.push(Approval {
            approver: approver.clone(),
            key: public.clone(),
            signature: keys::sign(&key, digest),
        });
        approvals.len()
    };
    let (what, digest, count) = if change::is_policy_change(&text) {
        let mut doc = PolicyChange::parse(doc_path, &text)?;
        let count = sign(&mut doc.approvals, &doc.digest.clone());
        doc.save(doc_path)?;
        ("policy change", doc.digest, count)
    } else {
        let mut file = PlanFile::parse(doc_path, &text)?;
        let count = sign(&mut file.approvals, &file.digest.clone());
        file.save(doc_path)?;
        ("plan", file.digest, count)
    };
    println!("{approver} approved {what} {} ({count} approval(s) now).", crate::pipeline::bound::short(&digest));
    Ok(0)
}

/// Where a plan's relative spec path is resolved: the directory the command runs in.
pub(crate) fn working_dir() -> Result<std::path::PathBuf> {
    std::env::current_dir().into_diagnostic().wrap_err("reading the working directory")
}

/// Signing is a decision: asked at a terminal, or given with `--yes`.
fn confirm_signing(approver: &str, yes: bool) -> Result<()> {
    let asked = || {
        super::confirmed(
            &format!("Sign this as {approver}?"),
            "refusing to sign without confirmation: stdin is not a terminal",
            "read the summary above, then pass --yes to sign without a terminal",
        )
    };
    if yes || asked()? { Ok(()) } else { Err(miette!("not signed")) }
}

/// The policy's pinned pipeline, proven: the identity opens a challenge sealed to the pinned
/// recipient, and its audit key is the pinned one.
fn prove_pipeline(identity: &PipelineIdentity, policy: &Policy) -> Result<ed25519_dalek::SigningKey> {
    let pinned = policy.pipeline.as_ref().ok_or_else(|| {
        miette!(
            help = "add `pipeline: {{ recipient: age1…, auditKey: …, policyLane: LANE }}` (printed by `tessera creds identity`)",
            "the policy pins no pipeline identity, so no run can prove it is the pipeline"
        )
    })?;
    identity.prove(&pinned.recipient)?;
    Ok(identity.pinned_audit_key(&pinned.audit_key)?)
}

/// In the pipeline the sealed file is the only source of cloud credentials: every backend that
/// reads a section and that this run may touch must find it there, and any other such backend is
/// made read-only, so no client ever falls back to the environment or an SDK's default chain.
fn sealed_only(
    registry: Registry,
    kinds: &BTreeSet<String>,
    sealed: Option<creds::WriteCredentials>,
) -> Result<Registry> {
    let sections = sealed.map(|c| c.sections).unwrap_or_default();
    let mut unsealed = BTreeSet::new();
    for backend in registry.backends() {
        let Some(section) = backend.credentials() else { continue };
        if sections.contains_key(section.name) {
            continue;
        }
        if kinds.contains(backend.kind()) {
            return Err(miette!(
                help = "seal them with `tessera creds seal` and pass --creds FILE; in the pipeline, credentials from the environment are never used",
                "this run acts on `{}` placements, and the sealed credentials have no `{}` section",
                backend.kind(),
                section.name
            ));
        }
        unsealed.insert(backend.kind().to_string());
    }
    Ok(registry.with_credentials(sections).with_read_only(Arc::new(
        move |_placement: &str, r: &tessera_provider_api::ProviderRef| unsealed.contains(&r.kind),
    )))
}

pub async fn pipeline_apply(
    g: &Global,
    doc_path: &Path,
    identity_file: Option<&Path>,
    sealed: Option<&Path>,
    run: &RunArgs,
) -> Result<u8> {
    // Every check runs before anything touches a cloud or the state's resources.
    let identity = PipelineIdentity::from_env_or_file(identity_file)?;
    let text = crate::bounded::read_to_string(doc_path, crate::bounded::PLAN)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading {}", doc_path.display()))?;
    let store: Arc<dyn StateStore> = Arc::from(state::open(&g.state).await?);
    if change::is_policy_change(&text) {
        return apply_policy_change(g, store, &identity, doc_path, &text, run).await;
    }
    let file = PlanFile::parse(doc_path, &text)?;
    let enforced = enforced_policy(g, store.as_ref()).await?.ok_or_else(|| {
        miette!(
            help = "the pipeline needs the repository's policy.yaml (or --policy PATH)",
            "no policy at {}",
            g.policy.display()
        )
    })?;
    let audit_key = prove_pipeline(&identity, &enforced.policy)?;
    bound::check_chain(store.as_ref(), g.audit_head.as_deref()).await?;
    // Signatures and lanes are checked on the plan and state alone: no file the plan names is
    // opened for a plan nobody approved.
    let records = store.resources().await?;
    let approvers = pipeline::check(&enforced.policy, &file, &Authority::gather(None, &records, &[]))?;
    let fleet = plan_spec::load(&file.plan.spec_path, &working_dir()?)?;

    let registry = base_registry(g)?;
    let sealed = match sealed {
        Some(path) => {
            let bytes = crate::bounded::read(path, crate::bounded::SMALL)
                .into_diagnostic()
                .wrap_err_with(|| format!("reading {}", path.display()))?;
            // Each backend takes its own section when it builds its client; nothing else sees them.
            Some(creds::unseal(&bytes, &identity, registry.backends())?)
        }
        None => None,
    };
    let mut kinds: BTreeSet<String> = file.plan.actions.iter().map(|a| a.provider.kind.clone()).collect();
    kinds.extend(fleet.placements.iter().map(|p| p.provider.kind.clone()));
    kinds.extend(records.into_iter().map(|r| r.provider.kind));
    kinds.extend(store.open_intents().await?.into_iter().map(|i| i.provider.kind));
    let registry = sealed_only(registry, &kinds, sealed)?;

    bound::bind(store.as_ref(), &enforced, &g.policy).await?;
    let signed: Arc<dyn StateStore> =
        Arc::new(SignedAuditStore::new(store, AuditSigner::new(audit_key, enforced.digest.clone())));
    let mut engine = Engine::new(Arc::new(registry), signed);
    engine.lock_ttl = g.lock_ttl;
    engine.audit_head = g.audit_head.clone();
    engine.retry.unreachable_for = g.unreachable_for;
    if let Some(t) = run.lock_timeout {
        engine.lock_timeout = t;
    }
    super::held_to_spec(&engine, &file.plan, &fleet).await?;
    let (events, cancel_rx, opts) = run_context(g, run);
    let report = engine.apply_pipeline(&file.plan, &fleet, &file.digest, &approvers, &opts, events, cancel_rx).await?;
    summarize(g, &report);
    finished("pipeline apply", &report)
}

/// A policy change: approved in the lane the *bound* policy names, applied by the identity the
/// bound policy pins, recorded in the audit chain with a hand-on to the new policy's key.
async fn apply_policy_change(
    g: &Global,
    store: Arc<dyn StateStore>,
    identity: &PipelineIdentity,
    doc_path: &Path,
    text: &str,
    run: &RunArgs,
) -> Result<u8> {
    let change = PolicyChange::parse(doc_path, text)?;
    let bound = store.bound_policy().await?.ok_or_else(|| {
        miette!(
            help = "the first apply under a policy binds it; a change needs a policy to change from",
            "this state is bound to no policy"
        )
    })?;
    let current = bound::parse_recorded(&bound)?;
    let meta = store.meta().await?;
    if change.lineage != meta.lineage || change.from != bound.digest {
        return Err(miette!(
            help = "make it again with `tessera policy plan FILE -o CHANGE` and have it approved",
            "the policy change is stale: it was made against policy {} of state {}, and this state (lineage {}) is bound to {}",
            crate::pipeline::bound::short(&change.from),
            change.lineage,
            meta.lineage,
            crate::pipeline::bound::short(&bound.digest)
        ));
    }
    let on_disk = bound::read_file(&g.policy)?.map(|t| bound::digest(&t));
    if on_disk.as_deref() != Some(change.to.as_str()) {
        return Err(miette!(
            help = "merge the new policy.yaml with the change, so that the repository holds what state will enforce",
            "{} is not the policy this change installs ({})",
            g.policy.display(),
            crate::pipeline::bound::short(&change.to)
        ));
    }
    let audit_key = prove_pipeline(identity, &current)?;
    let lane = current.pipeline.as_ref().map(|p| p.policy_lane.clone()).unwrap_or_default();
    let approvers = pipeline::check_lane(&current, &change.digest, &change.approvals, &lane)?;
    let next = Policy::parse(&g.policy, &change.policy)?;
    let next_pipeline = next.pipeline.as_ref().ok_or_else(|| {
        miette!("the new policy must keep a `pipeline:` section: without it no run could apply or sign the audit chain")
    })?;
    let handoff = Handoff { policy: change.to.clone(), key: next_pipeline.audit_key.trim().to_string() };
    let record = PolicyChangeRecord {
        at: state::now_secs(),
        policy_from: change.from.clone(),
        policy_to: change.to.clone(),
        change_digest: change.digest.clone(),
        approvers,
    };
    let body = serde_json::to_string(&record).into_diagnostic()?;
    let signer = AuditSigner::new(audit_key, bound.digest.clone());
    let to = BoundPolicy {
        digest: change.to.clone(),
        text: change.policy.clone(),
        source: std::path::absolute(&g.policy).unwrap_or_else(|_| g.policy.clone()).display().to_string(),
        bound_at: state::now_secs(),
    };

    let mut engine = Engine::new(Arc::new(base_registry(g)?), store.clone());
    if let Some(t) = run.lock_timeout {
        engine.lock_timeout = t;
    }
    let lease = store.lock(&engine.holder, "pipeline apply (policy change)", g.lock_ttl.as_secs().max(1)).await?;
    let result = store
        .change_policy(&lease, &change.digest, &change.from, &to, &|prev: &str| {
            signer.entry(prev, &body, Some(handoff.clone()))
        })
        .await;
    let _ = store.unlock(&lease).await;
    match result? {
        Some(head) => {
            println!(
                "Policy changed: {} -> {}, approved by {}. Audit head {head}.",
                crate::pipeline::bound::short(&change.from),
                crate::pipeline::bound::short(&change.to),
                record.approvers.join(", ")
            );
            Ok(0)
        }
        None => Err(miette!(
            help = "make, review and approve a new change",
            "this policy change was already applied (digest {}); a change is applied once",
            change.digest
        )),
    }
}

pub fn creds(command: CredsCommand) -> Result<u8> {
    match command {
        CredsCommand::Identity { out, policy_lane: lane } => {
            let (secret, recipient, audit_key) = PipelineIdentity::generate();
            write_key(&out, &format!("{}\n", secret.expose_secret()), 0o600, false)?;
            println!(
                "Identity written to {} (store it as the pipeline's secret, then delete it).\n\
                 Pin it in policy.yaml (policyLane: the lane whose approvals a change of the policy needs):\n\
                 pipeline:\n  recipient: {recipient}\n  auditKey: {audit_key}\n  policyLane: {lane}",
                out.display()
            );
        }
        CredsCommand::Seal { recipient, input, out } => {
            let plain = zeroize::Zeroizing::new(
                crate::bounded::read(&input, crate::bounded::SMALL)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("reading {}", input.display()))?,
            );
            let sealed = creds::seal(&plain, &recipient, &crate::backends::all())?;
            std::fs::write(&out, sealed).into_diagnostic()?;
            println!("Sealed to {recipient} in {}. Delete {} now.", out.display(), input.display());
        }
    }
    Ok(0)
}

/// The chain, verified against the state's policy and, if given, a head published elsewhere.
async fn verified(g: &Global, store: &dyn StateStore, head: Option<&str>) -> Result<audit::Verified> {
    let (rows, state_head) = store.audit_log().await?;
    let enforced: Option<Enforced> = enforced_policy(g, store).await?;
    let bound = store.bound_policy().await?.map(|b| b.digest);
    let key = enforced.as_ref().and_then(|e| e.policy.pipeline.as_ref()).map(|p| p.audit_key.trim().to_string());
    let anchors = Anchors { key: key.as_deref(), policy: bound.as_deref(), head };
    Ok(audit::verify(&rows, state_head.as_deref(), anchors)?)
}

pub async fn audit(g: &Global, command: AuditCommand) -> Result<u8> {
    let store = state::open(&g.state).await?;
    match command {
        AuditCommand::Verify { head } => {
            let v = verified(g, store.as_ref(), head.as_deref()).await?;
            let at = v.head.as_deref().unwrap_or("(empty)");
            match v.after_head {
                Some(n) => println!(
                    "Audit chain intact: {} record(s), signed by the pipeline; the given head is in it, {n} record(s) after it. Head {at}.",
                    v.records
                ),
                None => println!("Audit chain intact: {} record(s), signed by the pipeline. Head {at}.", v.records),
            }
        }
        AuditCommand::Head => {
            let v = verified(g, store.as_ref(), None).await?;
            println!("{}", v.head.as_deref().unwrap_or(audit::GENESIS));
        }
        AuditCommand::Log => {
            let (rows, _) = store.audit_log().await?;
            for row in &rows {
                let Ok(entry) = serde_json::from_str::<SignedEntry>(&row.record) else {
                    println!("#{} (not signed: `tessera audit verify` refuses it)", row.seq);
                    continue;
                };
                match serde_json::from_str::<Body>(&entry.body) {
                    Ok(Body::Apply(record)) => {
                        println!(
                            "#{} {} plan {} by {}",
                            row.seq,
                            record.fleet,
                            crate::pipeline::bound::short(&record.plan_digest),
                            record.approvers.join(", ")
                        );
                        for o in &record.outcomes {
                            println!("    {o}");
                        }
                    }
                    Ok(Body::Policy(record)) => println!(
                        "#{} policy {} -> {} by {}",
                        row.seq,
                        crate::pipeline::bound::short(&record.policy_from),
                        crate::pipeline::bound::short(&record.policy_to),
                        record.approvers.join(", ")
                    ),
                    Err(_) => println!("#{} (unreadable record)", row.seq),
                }
            }
        }
    }
    Ok(0)
}

pub async fn policy_command(g: &Global, command: PolicyCommand) -> Result<u8> {
    match command {
        PolicyCommand::Check { file } => {
            let path = file.unwrap_or_else(|| g.policy.clone());
            let policy = Policy::load(&path)?;
            println!(
                "{} is valid: {} approver(s), {} lane(s), every lane and escalation can be satisfied{}.",
                path.display(),
                policy.approvers.len(),
                policy.lanes.len(),
                if policy.pipeline.is_some() {
                    ", pipeline pinned"
                } else {
                    "; no `pipeline:` pinned, so `pipeline apply` is refused"
                }
            );
        }
        PolicyCommand::Show => {
            let store = state::open(&g.state).await?;
            match store.bound_policy().await? {
                Some(b) => {
                    let at = humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(b.bound_at),
                    );
                    println!("Bound to policy {} (from {}, on {at}):\n\n{}", b.digest, b.source, b.text);
                }
                None => println!("This state is bound to no policy yet; the first apply binds {}.", g.policy.display()),
            }
        }
        PolicyCommand::Plan { file, out } => {
            let store = state::open(&g.state).await?;
            let bound = store.bound_policy().await?.ok_or_else(|| {
                miette!(
                    help = "the first apply binds the policy file as it is; no change is needed",
                    "this state is bound to no policy yet"
                )
            })?;
            let text = bound::read_file(&file)?.ok_or_else(|| miette!("{} does not exist", file.display()))?;
            let next = Policy::parse(&file, &text)?;
            if next.pipeline.is_none() {
                return Err(miette!("the new policy must keep a `pipeline:` section"));
            }
            let current = bound::parse_recorded(&bound)?;
            let lane = current.pipeline.as_ref().map(|p| p.policy_lane.clone()).unwrap_or_default();
            let change = PolicyChange::new(&store.meta().await?.lineage, &bound.digest, &text);
            if change.to == change.from {
                println!("{} is the bound policy already: nothing to change.", file.display());
                return Ok(0);
            }
            change.save(&out)?;
            println!(
                "Policy change {} -> {} saved to {}. It needs the approvals of lane `{lane}` of the current policy \
                 (`tessera approve {}`), then `tessera pipeline apply {}`.",
                crate::pipeline::bound::short(&change.from),
                crate::pipeline::bound::short(&change.to),
                out.display(),
                out.display(),
                out.display()
            );
        }
    }
    Ok(0)
}
