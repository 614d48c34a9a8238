//! Plans name what changed inside a manifest or chart values by its path: changing one URL of a
//! log output, or one chart value, shows that leaf with old → new in a few short lines (never the
//! whole object twice), and the JSON plan gives each as `{path: [..], old, new}`.

mod common;

use common::{Harness, load};
use serde_json::{Value, json};
use tessera::plan::ActionKind;
use tessera_sim::Faults;

fn spec(loki: &str, scrape: &str) -> String {
    common::one_pool_fleet(
        "paths",
        &format!(
            r#"  coreServices:
    monitoring:
      values: {{ prometheus: {{ prometheusSpec: {{ scrapeInterval: {scrape} }} }} }}
    logging:
      output:
        loki: {{ url: "{loki}" }}
  placements:
    - {{ name: eu, provider: sim, region: eu-west-1 }}
"#
        ),
    )
}

#[tokio::test(start_paused = true)]
async fn one_changed_leaf_is_shown_by_its_path_in_short_lines() {
    let h = Harness::new(Faults::default());
    let before = load(&spec("http://loki-a.logging.svc:3100", "30s"));
    let report = h.apply(&before).await;
    assert!(report.is_success(), "{report:#?}");

    let after = load(&spec("http://loki-b.logging.svc:3100", "15s"));
    let plan = h.plan(&after).await;
    assert!(plan.actions.iter().all(|a| a.kind == ActionKind::Update), "{:#?}", plan.actions);
    let human = tessera::plan::render_human_in(&plan, 200);
    assert!(human.lines().all(|l| l.chars().count() <= 200), "no line over 200 characters:\n{human}");
    assert!(human.contains("url: \"http://loki-a.logging.svc:3100\" → \"http://loki-b.logging.svc:3100\""), "{human}");
    assert!(human.contains("scrapeInterval: \"30s\" → \"15s\""), "{human}");
    // Only the leaves: the rest of the manifest is not printed.
    assert!(!human.contains("apiVersion"), "{human}");

    // JSON: each leaf by its path, keys and indexes, starting with the attribute.
    let v = serde_json::to_value(&plan).unwrap();
    let leaves: Vec<&Value> = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["changes"].as_array().into_iter().flatten())
        .flat_map(|c| c["leaves"].as_array().into_iter().flatten())
        .collect();
    let url = leaves.iter().find(|l| l["path"].as_array().and_then(|p| p.last()) == Some(&json!("url")));
    let url = url.unwrap_or_else(|| panic!("{leaves:#?}"));
    assert_eq!(
        (url["old"].clone(), url["new"].clone()),
        (json!("http://loki-a.logging.svc:3100"), json!("http://loki-b.logging.svc:3100"))
    );
    let scrape = leaves
        .iter()
        .find(|l| l["path"].as_array().and_then(|p| p.last()) == Some(&json!("scrapeInterval")))
        .unwrap_or_else(|| panic!("{leaves:#?}"));
    assert_eq!(scrape["path"][0], "values", "{scrape}");
}
