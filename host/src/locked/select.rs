//! Selective deployment: run only some of an app's components (`tessera up --component-id`,
//! Spin's flag of the same name and SpinKube's `spec.components`).
//!
//! The locked app is cut down before anything else looks at it, so every later check
//! (variables, sqlite and key-value labels, outbound hosts, trigger exports) sees only the
//! selected components. Triggers of other components are dropped, and so are application
//! variables that nothing selected refers to: a pod that runs `auth` alone need not be
//! given the Stripe keys.

use std::collections::BTreeSet;

use anyhow::bail;
use serde_json::Value;

use super::LockedApp;
use crate::variables::template_variables;

impl LockedApp {
    /// Keeps the components named in `ids` and the triggers and variables they use.
    /// `origin` names the app in errors (the manifest file or registry reference).
    pub fn retain_components(&mut self, ids: &[String], origin: &str) -> anyhow::Result<()> {
        let known: BTreeSet<&str> = self.components.iter().map(|c| c.id.as_str()).collect();
        let unknown: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !known.contains(id))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "{origin}: --component-id {}: no such component; the app has: {}",
                unknown.join(", "),
                known.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        self.components.retain(|c| wanted.contains(c.id.as_str()));
        self.triggers
            .retain(|t| t.component().is_some_and(|c| wanted.contains(c)));
        let used = self.referenced_variables()?;
        self.variables.retain(|name, _| used.contains(name));
        Ok(())
    }

    /// Names of the variables that the components, their triggers and the application's
    /// trigger defaults refer to in `{{ templates }}`.
    fn referenced_variables(&self) -> anyhow::Result<BTreeSet<String>> {
        let mut templates: Vec<&str> = Vec::new();
        for component in &self.components {
            templates.extend(component.config.values().map(String::as_str));
            if let Some(hosts) = component.metadata.get("allowed_outbound_hosts") {
                collect_strings(hosts, &mut templates);
            }
        }
        for trigger in &self.triggers {
            collect_strings(&trigger.trigger_config, &mut templates);
        }
        let mut used_types: BTreeSet<&str> = BTreeSet::new();
        used_types.extend(self.triggers.iter().map(|t| t.trigger_type.as_str()));
        // `[application.trigger.redis] address` is a default for the redis triggers that
        // remain; it matters only if some do.
        if let Some(Value::Object(defaults)) = self.metadata.get("triggers") {
            for (trigger_type, config) in defaults {
                if used_types.contains(trigger_type.as_str()) {
                    collect_strings(config, &mut templates);
                }
            }
        }
        let mut names = BTreeSet::new();
        for template in templates {
            for name in template_variables(template)? {
                names.insert(name.to_string());
            }
        }
        Ok(names)
    }
}

/// Every string inside `value`, at any depth.
fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
