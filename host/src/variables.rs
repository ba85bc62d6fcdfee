//! Application variables: `[variables]` defaults, `SPIN_VARIABLE_*` from the environment,
//! and `{{ name }}` templates used by component variables, outbound hosts and addresses.
//!
//! Values are resolved once at startup: every provider Tessera supports (environment,
//! defaults) is static, and a missing required variable should stop `up` before it binds.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};

use crate::manifest::{Variable, VariableName};

/// Where variable values come from, highest priority first.
pub trait Provider {
    fn get(&self, name: &VariableName) -> Option<String>;
}

/// `SPIN_VARIABLE_JWT_SECRET=...` provides `jwt_secret`, as in Spin.
pub struct EnvProvider;

impl Provider for EnvProvider {
    fn get(&self, name: &VariableName) -> Option<String> {
        std::env::var(env_name(name)).ok()
    }
}

pub fn env_name(name: &VariableName) -> String {
    format!("SPIN_VARIABLE_{}", name.as_str().to_ascii_uppercase())
}

/// The resolved value of every application variable.
#[derive(Debug, Default, Clone)]
pub struct Resolved {
    values: HashMap<VariableName, String>,
}

impl Resolved {
    /// Resolves all declared variables; fails on the first required one without a value.
    pub fn resolve(
        declared: &BTreeMap<VariableName, Variable>,
        provider: &dyn Provider,
    ) -> anyhow::Result<Self> {
        let mut values = HashMap::new();
        for (name, decl) in declared {
            if decl.required && decl.default.is_some() {
                bail!("variable `{name}` is both required and has a default; choose one");
            }
            let value = provider.get(name).or_else(|| decl.default.clone());
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => bail!(
                    "required variable `{name}` has no value: set the environment variable {}",
                    env_name(name)
                ),
                // Neither required nor defaulted: undefined until a provider supplies it.
                None => {}
            }
        }
        Ok(Resolved { values })
    }

    /// Renders a template such as `redis://{{ redis_host }}:6379`.
    pub fn render(&self, template: &str) -> anyhow::Result<String> {
        let parts = parse_template(template)?;
        let mut out = String::with_capacity(template.len());
        for part in parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => {
                    let value = self.values.get(&name).with_context(|| {
                        format!("template {template:?} uses variable `{name}`, which has no value (declare it under [variables])")
                    })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

/// The variables a template such as `redis://{{ redis_host }}:6379` refers to.
pub fn template_variables(template: &str) -> anyhow::Result<Vec<VariableName>> {
    Ok(parse_template(template)?
        .into_iter()
        .filter_map(|part| match part {
            Part::Variable(name) => Some(name),
            Part::Literal(_) => None,
        })
        .collect())
}

enum Part<'a> {
    Literal(&'a str),
    Variable(VariableName),
}

fn parse_template(template: &str) -> anyhow::Result<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Literal(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("template {template:?} has an unclosed '{{{{'"))?;
        let name = VariableName::parse(after[..end].trim())
            .map_err(|e| anyhow::anyhow!("template {template:?}: {e}"))?;
        parts.push(Part::Variable(name));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(HashMap<String, String>);
    impl Provider for Fixed {
        fn get(&self, name: &VariableName) -> Option<String> {
            self.0.get(name.as_str()).cloned()
        }
    }

    fn declared(entries: &[(&str, Option<&str>, bool)]) -> BTreeMap<VariableName, Variable> {
        entries
            .iter()
            .map(|(n, d, r)| {
                let var = Variable {
                    default: d.map(str::to_owned),
                    required: *r,
                    secret: false,
                };
                (VariableName::parse(n).unwrap(), var)
            })
            .collect()
    }

    #[test]
    fn provider_overrides_default() {
        let vars = declared(&[("port", Some("6379"), false)]);
        let env = Fixed(HashMap::from([("port".into(), "7000".into())]));
        let resolved = Resolved::resolve(&vars, &env).unwrap();
        assert_eq!(
            resolved.render("redis://x:{{ port }}").unwrap(),
            "redis://x:7000"
        );
    }

    #[test]
    fn missing_required_variable_names_the_env_var() {
        let vars = declared(&[("jwt_secret", None, true)]);
        let err = Resolved::resolve(&vars, &Fixed(HashMap::new())).unwrap_err();
        assert!(
            err.to_string().contains("SPIN_VARIABLE_JWT_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn templates_reject_unknown_and_malformed_names() {
        let resolved = Resolved::resolve(&declared(&[]), &Fixed(HashMap::new())).unwrap();
        assert!(
            resolved
                .render("{{ nope }}")
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
        assert!(resolved.render("{{ open").is_err());
        assert_eq!(resolved.render("plain").unwrap(), "plain");
    }
}
